// Terraform checks without Terraform (no provider download is possible here):
//   node infra/tools/tf-check.mjs [DIR]      (default infra/terraform)
// 1. every .tf file parses (@cdktf/hcl2json, HashiCorp's HCL parser in wasm);
// 2. in each module directory, every var.X, local.X, data.T.N, resource T.N
//    and module.M.O an expression references is declared (module outputs are
//    looked up in the called module's source directory);
// 3. every module call passes only variables the module declares, and every
//    variable without a default.
// 4. every "${path.module}/..." path (file() arguments, realm_file) exists.
// Exits 1 with one line per problem.
import fs from 'node:fs';
import path from 'node:path';
import { parse } from '@cdktf/hcl2json';

const root = path.resolve(process.argv[2] || path.join(path.dirname(new URL(import.meta.url).pathname), '../terraform'));
const problems = [];
const META = new Set(['source', 'version', 'count', 'for_each', 'providers', 'depends_on']);

function tfDirs(dir) {
  const out = [];
  const ents = fs.readdirSync(dir, { withFileTypes: true });
  if (ents.some((e) => e.isFile() && e.name.endsWith('.tf'))) out.push(dir);
  for (const e of ents) if (e.isDirectory() && !e.name.startsWith('.')) out.push(...tfDirs(path.join(dir, e.name)));
  return out;
}

const cache = new Map();
async function loadDir(dir) {
  if (cache.has(dir)) return cache.get(dir);
  const m = { files: [], vars: new Map(), locals: new Set(), resources: new Set(), data: new Set(), modules: new Map(), outputs: new Set() };
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.tf')).sort()) {
    const file = path.join(dir, f);
    let j;
    try {
      j = await parse(file, fs.readFileSync(file, 'utf8'));
    } catch (e) {
      problems.push(`${path.relative(process.cwd(), file)}: does not parse: ${String(e.message || e).split('\n')[0]}`);
      continue;
    }
    m.files.push({ file, json: j });
    for (const [n, defs] of Object.entries(j.variable || {})) m.vars.set(n, defs[0]);
    for (const blk of j.locals || []) for (const n of Object.keys(blk)) m.locals.add(n);
    for (const [t, byName] of Object.entries(j.resource || {})) for (const n of Object.keys(byName)) m.resources.add(`${t}.${n}`);
    for (const [t, byName] of Object.entries(j.data || {})) for (const n of Object.keys(byName)) m.data.add(`${t}.${n}`);
    for (const [n, defs] of Object.entries(j.module || {})) m.modules.set(n, defs[0]);
    for (const n of Object.keys(j.output || {})) m.outputs.add(n);
  }
  cache.set(dir, m);
  return m;
}

function strings(v, out = []) {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) v.forEach((x) => strings(x, out));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) { out.push(k); strings(x, out); }
  return out;
}

// The text of every ${...} / %{...} template expression in s.
function expressions(s) {
  const out = [];
  for (let i = 0; i < s.length; i++) {
    if ((s[i] === '$' || s[i] === '%') && s[i + 1] === '{' && s[i - 1] !== '$') {
      let depth = 0, j = i + 1, q = false;
      for (; j < s.length; j++) {
        const c = s[j];
        if (c === '"' && s[j - 1] !== '\\') q = !q;
        if (q) continue;
        if (c === '{') depth++;
        else if (c === '}' && --depth === 0) break;
      }
      out.push(s.slice(i + 2, j));
      i = j;
    }
  }
  return out;
}

for (const dir of tfDirs(root)) {
  const m = await loadDir(dir);
  const rel = (f) => path.relative(process.cwd(), f);
  for (const { file, json } of m.files) {
    for (const s of strings(json)) {
      for (const [, p] of s.matchAll(/\$\{path\.module\}(\/[^"}\\]+)/g))
        if (!fs.existsSync(path.join(dir, p))) problems.push(`${rel(file)}: \${path.module}${p}: no such file`);
      for (const e of expressions(s)) {
        const miss = (what) => problems.push(`${rel(file)}: ${what} is referenced but not declared`);
        for (const [, n] of e.matchAll(/(?<![\w.])var\.([A-Za-z_][\w-]*)/g)) if (!m.vars.has(n)) miss(`var.${n}`);
        for (const [, n] of e.matchAll(/(?<![\w.])local\.([A-Za-z_][\w-]*)/g)) if (!m.locals.has(n)) miss(`local.${n}`);
        for (const [, t, n] of e.matchAll(/(?<![\w.])data\.([a-z][\w]*)\.([A-Za-z_][\w-]*)/g)) if (!m.data.has(`${t}.${n}`)) miss(`data.${t}.${n}`);
        for (const [, t, n] of e.matchAll(/(?<![\w.])((?:aws|random|tls|null|time)_[a-z0-9_]+)\.([A-Za-z_][\w-]*)/g))
          if (!m.resources.has(`${t}.${n}`)) miss(`${t}.${n}`);
        for (const [, n, o] of e.matchAll(/(?<![\w.])module\.([A-Za-z_][\w-]*)(?:\[[^\]]*\])?\.([A-Za-z_][\w-]*)/g)) {
          const call = m.modules.get(n);
          if (!call) { miss(`module.${n}`); continue; }
          const callee = await loadDir(path.resolve(dir, call.source));
          if (!callee.outputs.has(o)) miss(`module.${n}.${o} (no such output in ${call.source})`);
        }
      }
    }
  }
  for (const [n, call] of m.modules) {
    const src = path.resolve(dir, call.source);
    if (!fs.existsSync(src)) { problems.push(`${rel(dir)}: module ${n}: source ${call.source} does not exist`); continue; }
    const callee = await loadDir(src);
    for (const k of Object.keys(call)) if (!META.has(k) && !callee.vars.has(k)) problems.push(`${rel(dir)}: module ${n} passes ${k}, which ${call.source} does not declare`);
    for (const [v, def] of callee.vars) if (!('default' in def) && !(v in call)) problems.push(`${rel(dir)}: module ${n} does not pass required variable ${v}`);
  }
}

if (problems.length) {
  for (const p of problems) console.error(`tf-check: ${p}`);
  process.exit(1);
}
console.log(`tf-check: ${[...cache.values()].reduce((n, m) => n + m.files.length, 0)} .tf files in ${cache.size} modules parse; every reference is declared, every path.module file exists`);
