/**
 * Runs deploy/nginx.conf (the docker-compose load balancer) on loopback,
 * with the upstream servers and the listen port replaced, so tests go
 * through the same configuration users deploy.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "../../src/db/embedded-postgres.js";

const CONF = fileURLToPath(new URL("../../deploy/nginx.conf", import.meta.url));

export interface NginxHandle {
  url: string;
  stop(): Promise<void>;
}

export function nginxBinary(): string {
  for (const p of ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"]) if (existsSync(p)) return p;
  throw new Error("nginx is not installed: run scripts/ensure-test-deps.sh");
}

export async function renderNginxConf(upstreams: string[], port: number, dir: string): Promise<string> {
  let conf = await readFile(CONF, "utf8");
  const servers = upstreams.map((u) => `    server ${new URL(u).host} max_fails=1 fail_timeout=5s;`).join("\n");
  conf = conf.replace(/(upstream memchat \{[\s\S]*?)(\n\s*server [^\n]+)+/, `$1\n${servers}`);
  conf = conf.replace(/listen 8080;/, `listen 127.0.0.1:${port};`);
  conf = conf.replace(/worker_processes auto;/, `worker_processes 1;\ndaemon off;\npid ${dir}/nginx.pid;\nerror_log ${dir}/error.log warn;`);
  conf = conf.replace(
    /http \{/,
    `http {\n  access_log off;\n  client_body_temp_path ${dir}/body;\n  proxy_temp_path ${dir}/proxy;\n  fastcgi_temp_path ${dir}/fastcgi;\n  uwsgi_temp_path ${dir}/uwsgi;\n  scgi_temp_path ${dir}/scgi;`,
  );
  if (!conf.includes(`listen 127.0.0.1:${port}`) || !conf.includes(servers.trim())) throw new Error("deploy/nginx.conf no longer has the shape this helper rewrites");
  return conf;
}

export async function startNginx(upstreams: string[]): Promise<NginxHandle> {
  const dir = await mkdtemp(path.join(tmpdir(), "memchat-nginx-"));
  await chmod(dir, 0o755); // nginx workers run as an unprivileged user
  const port = await freePort();
  const file = path.join(dir, "nginx.conf");
  await writeFile(file, await renderNginxConf(upstreams, port, dir));
  const child: ChildProcess = spawn(nginxBinary(), ["-c", file, "-p", dir, "-e", `${dir}/error.log`], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
    try {
      await fetch(`${url}/healthz`);
      break;
    } catch {
      if (i > 100) throw new Error(`nginx did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    url,
    async stop() {
      if (child.exitCode === null) child.kill("SIGQUIT");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (child.exitCode === null) child.kill("SIGKILL");
      await rm(dir, { recursive: true, force: true });
    },
  };
}
