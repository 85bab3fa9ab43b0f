/**
 * The Docker engine for the docker suites. Under EVALFLOW_E2E=1 (CI) it is mandatory: a missing engine
 * fails the suite. Otherwise a suite runs when an engine answers and is skipped when none does.
 * DOCKER_HOST wins; unset, the private engine of scripts/services/dockerd.sh is used when it is there.
 */
import { existsSync } from 'node:fs';
import type Docker from 'dockerode';
import { connectDocker, pingDocker } from '../../backends/local/docker/client.js';

const TEAM_SOCKET = '/run/evalflow-docker.sock';

export async function testDocker(): Promise<Docker | undefined> {
  if (!process.env.DOCKER_HOST && existsSync(TEAM_SOCKET)) process.env.DOCKER_HOST = `unix://${TEAM_SOCKET}`;
  const docker = connectDocker();
  try {
    await pingDocker(docker);
    return docker;
  } catch (err) {
    if (process.env.EVALFLOW_E2E === '1') throw err;
    return undefined;
  }
}
