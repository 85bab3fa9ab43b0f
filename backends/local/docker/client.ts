/**
 * The Docker engine evalflow talks to: `DOCKER_HOST` (unix:///path or tcp://host:port), else the
 * default socket /var/run/docker.sock. Only through the API (dockerode), never a `docker` subprocess.
 */
import Docker from 'dockerode';

export const DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock';

export function describeDockerHost(env: Record<string, string | undefined> = process.env): string {
  return env.DOCKER_HOST || DEFAULT_DOCKER_HOST;
}

export function connectDocker(env: Record<string, string | undefined> = process.env): Docker {
  const host = describeDockerHost(env);
  if (host.startsWith('unix://')) return new Docker({ socketPath: host.slice('unix://'.length) });
  const url = new URL(host.replace(/^tcp:/, 'http:'));
  return new Docker({ host: url.hostname, port: Number(url.port || 2375), protocol: url.protocol === 'https:' ? 'https' : 'http' });
}

/** Resolves when the engine answers; the error names the host and says how to start one here. */
export async function pingDocker(docker: Docker, env: Record<string, string | undefined> = process.env): Promise<void> {
  try {
    await docker.ping();
  } catch (err) {
    throw new Error(
      `cannot reach Docker at ${describeDockerHost(env)} (DOCKER_HOST): ${(err as Error).message}; ` +
        'start one with scripts/services/dockerd.sh and export DOCKER_HOST=unix:///run/evalflow-docker.sock',
      { cause: err },
    );
  }
}
