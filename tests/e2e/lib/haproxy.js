// Debian's HAProxy (package `haproxy`, installed by scripts/deps.sh) as the
// tests' network load balancer: TCP mode, PROXY protocol towards the
// gateways, like an AWS NLB. Runs in the foreground (-db) with a config file
// the caller writes; stopped by the harness. A missing binary fails the run:
// these tests never skip.
//
//   const hap = await Haproxy.start({ config: (dir) => text, ports: [4317, 4318] });
//   await hap.waitServers({ 'otlp_grpc/gw1': 'UP', 'otlp_grpc/gw4': 'DOWN' });  // needs statsSocket(dir)
//   await hap.stop();

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const HAPROXY = process.env.HAPROXY_BIN || '/usr/sbin/haproxy';

/** Resolves once something accepts TCP connections on host:port; rejects after `deadline` (ms since epoch). */
export function waitForPort(port, deadline, host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const s = net.connect({ host, port }, () => {
        s.destroy();
        resolve();
      });
      s.on('error', () => {
        s.destroy();
        if (performance.now() > deadline) reject(new Error(`${host}:${port} not listening`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

/** The `stats socket` line for a config written in `dir` (gives waitServers/stats their socket). */
export const statsSocket = (dir) => `  stats socket ${path.join(dir, 'haproxy.sock')} mode 600 level admin`;

export class Haproxy {
  /**
   * config: (dir) => haproxy.cfg text (written to dir/haproxy.cfg), or
   * cfgPath: an existing file used as it is; ports: TCP ports on 127.0.0.1
   * the config binds (waited for); cwd: working directory (default: the temp dir).
   */
  static async start({ config, cfgPath, ports = [], cwd, timeoutMs = 5000 }) {
    if (!fs.existsSync(HAPROXY)) {
      throw new Error(`HAProxy not found at ${HAPROXY}: install the Debian package haproxy (scripts/deps.sh does)`);
    }
    const hap = new Haproxy();
    hap.dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'otlp-gw-haproxy-'));
    hap.cfgPath = cfgPath ?? path.join(hap.dir, 'haproxy.cfg');
    if (config) await fsp.writeFile(hap.cfgPath, config(hap.dir));
    hap.sock = path.join(hap.dir, 'haproxy.sock');
    hap._log = [];
    hap.proc = spawn(HAPROXY, ['-f', hap.cfgPath, '-db'], { cwd: cwd ?? hap.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    hap.proc.stdout.on('data', (c) => hap._log.push(c));
    hap.proc.stderr.on('data', (c) => hap._log.push(c));
    hap._exited = new Promise((r) => {
      hap.proc.on('exit', (code, signal) => r({ code, signal }));
      hap.proc.on('error', (e) => r({ code: -1, error: e.message }));
    });
    try {
      const deadline = performance.now() + timeoutMs;
      for (const p of ports) {
        const gone = hap._exited.then((x) => {
          throw new Error(`haproxy exited: ${JSON.stringify(x)}`);
        });
        await Promise.race([waitForPort(p, deadline), gone]);
      }
    } catch (e) {
      await hap.stop();
      throw new Error(`${e.message}; haproxy output:\n${hap.log()}`);
    }
    return hap;
  }

  log() {
    return Buffer.concat(this._log).toString('utf8');
  }

  async stop() {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGKILL');
      await this._exited;
    }
    if (process.env.E2E_KEEP_TMP !== '1') await fsp.rm(this.dir, { recursive: true, force: true });
  }

  /** One command on the stats socket; resolves its output. */
  command(cmd, timeoutMs = 2000) {
    return new Promise((resolve, reject) => {
      const s = net.connect(this.sock);
      const chunks = [];
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`haproxy stats socket: "${cmd}" timed out`));
      }, timeoutMs);
      s.on('connect', () => s.write(cmd + '\n'));
      s.on('data', (c) => chunks.push(c));
      s.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      s.on('close', () => {
        clearTimeout(timer);
        resolve(Buffer.concat(chunks).toString('utf8'));
      });
    });
  }

  /** {"proxy/server": status} from `show stat` (UP, DOWN, "DOWN 1/2", MAINT, ...). */
  async serverStates() {
    const text = await this.command('show stat');
    const lines = text.split('\n').filter(Boolean);
    const head = lines[0].replace(/^# /, '').split(',');
    const px = head.indexOf('pxname');
    const sv = head.indexOf('svname');
    const st = head.indexOf('status');
    const out = {};
    for (const l of lines.slice(1)) {
      const f = l.split(',');
      if (f[sv] === 'FRONTEND' || f[sv] === 'BACKEND') continue;
      out[`${f[px]}/${f[sv]}`] = f[st];
    }
    return out;
  }

  /** Wait until every named server has the wanted status (UP or DOWN, by prefix). */
  async waitServers(want, timeoutMs = 10_000) {
    const deadline = performance.now() + timeoutMs;
    let got;
    for (;;) {
      got = await this.serverStates();
      if (Object.entries(want).every(([k, v]) => (got[k] ?? '').startsWith(v))) return got;
      if (performance.now() > deadline) {
        throw new Error(`haproxy servers: want ${JSON.stringify(want)}, have ${JSON.stringify(got)}\n${this.log()}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
