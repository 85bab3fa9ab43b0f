/**
 * `execution.extra_docker_args` (upstream: extra flags of `docker run`) mapped onto Docker API fields.
 * evalflow creates containers through the API, not a shell, so only flags with an API equivalent are
 * accepted; any other flag, or shell syntax ($VAR, pipes), is a ConfigError naming the key and the flag.
 *
 * Supported (as `--flag value` or `--flag=value`):
 *   resources   -m/--memory, --memory-swap, --memory-reservation, --shm-size, --cpus, --cpuset-cpus,
 *               --cpu-shares, --pids-limit, --ulimit NAME=SOFT[:HARD], --oom-score-adj
 *   devices     --gpus all|N|'"device=0,1"'|count=N[,capabilities=…]  (DeviceRequests; needs the NVIDIA
 *               container toolkit on the host, not testable here),
 *               --device HOST[:CONTAINER[:PERMS]], --runtime NAME
 *   filesystem  -v/--volume SRC:DST[:ro|rw], --mount type=bind|tmpfs,…, --tmpfs PATH[:OPTS], --read-only
 *   process     -e/--env NAME=VALUE (visible in `docker inspect`: use env_vars for secrets), -u/--user,
 *               -w/--workdir, --entrypoint, -l/--label K=V, --cap-add, --cap-drop, --security-opt,
 *               --ipc, --privileged, --add-host HOST:IP, --stop-signal
 *   accepted with a warning, no effect: --rm (evalflow removes its containers itself), --init (always on),
 *               -p/--publish (containers use host networking), --network/--net host
 */
import type { DeviceRequest, HostConfig, MountConfig } from 'dockerode';
import { ConfigError } from '../../../config/errors.js';

export const EXTRA_DOCKER_ARGS_KEY = 'execution.extra_docker_args';

export interface DockerArgs {
  hostConfig: HostConfig;
  env: string[];
  labels: Record<string, string>;
  user?: string;
  workingDir?: string;
  entrypoint?: string[];
  stopSignal?: string;
  /** Flags accepted without effect, each a sentence naming the flag. */
  warnings: string[];
}

type Apply = (value: string, out: DockerArgs, fail: (problem: string) => never) => void;
interface Flag {
  /** Takes no value (`--privileged`); `--flag=true|false` is accepted too. */
  boolean?: boolean;
  apply: Apply;
}

const push = <T>(list: T[] | undefined, item: T): T[] => [...(list ?? []), item];

const FLAGS: Record<string, Flag> = {
  '--memory': { apply: (v, o, fail) => (o.hostConfig.Memory = bytes(v, fail)) },
  '--memory-swap': { apply: (v, o, fail) => (o.hostConfig.MemorySwap = v === '-1' ? -1 : bytes(v, fail)) },
  '--memory-reservation': { apply: (v, o, fail) => (o.hostConfig.MemoryReservation = bytes(v, fail)) },
  '--shm-size': { apply: (v, o, fail) => (o.hostConfig.ShmSize = bytes(v, fail)) },
  '--cpus': {
    apply: (v, o, fail) => {
      const cpus = Number(v);
      if (!(cpus > 0)) fail('expected a positive number of CPUs');
      o.hostConfig.NanoCpus = Math.round(cpus * 1e9);
    },
  },
  '--cpuset-cpus': { apply: (v, o, fail) => (o.hostConfig.CpusetCpus = matching(v, /^\d+([-,]\d+)*$/, 'expected a CPU list like 0-3,5', fail)) },
  '--cpu-shares': { apply: (v, o, fail) => (o.hostConfig.CpuShares = integer(v, fail)) },
  '--pids-limit': { apply: (v, o, fail) => (o.hostConfig.PidsLimit = integer(v, fail)) },
  '--oom-score-adj': { apply: (v, o, fail) => (o.hostConfig.OomScoreAdj = integer(v, fail)) },
  '--ulimit': {
    apply: (v, o, fail) => {
      const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(v);
      if (!m) return fail('expected NAME=SOFT[:HARD], e.g. nofile=1024:2048');
      o.hostConfig.Ulimits = push(o.hostConfig.Ulimits, { Name: m[1] as string, Soft: Number(m[2]), Hard: Number(m[3] ?? m[2]) });
    },
  },
  '--gpus': { apply: (v, o, fail) => (o.hostConfig.DeviceRequests = push(o.hostConfig.DeviceRequests, gpuRequest(v, fail))) },
  '--device': {
    apply: (v, o, fail) => {
      const [host, container = host, perms = 'rwm', ...rest] = v.split(':');
      if (!host?.startsWith('/') || !container?.startsWith('/') || rest.length || !/^[rwm]+$/.test(perms)) return fail('expected HOST[:CONTAINER[:PERMISSIONS]] with absolute paths');
      o.hostConfig.Devices = push(o.hostConfig.Devices as unknown[] | undefined, { PathOnHost: host, PathInContainer: container, CgroupPermissions: perms });
    },
  },
  '--runtime': { apply: (v, o, fail) => (o.hostConfig.Runtime = matching(v, /^[A-Za-z0-9_.-]+$/, 'expected a runtime name', fail)) },
  '--volume': {
    apply: (v, o, fail) => {
      const [source, target, mode, ...rest] = v.split(':');
      if (!source?.startsWith('/') || !target?.startsWith('/') || rest.length || (mode !== undefined && !/^(ro|rw)$/.test(mode))) {
        fail('expected /HOST/PATH:/CONTAINER/PATH[:ro|rw] (named volumes are not supported)');
      }
      o.hostConfig.Binds = push(o.hostConfig.Binds, v);
    },
  },
  '--mount': { apply: (v, o, fail) => (o.hostConfig.Mounts = push(o.hostConfig.Mounts, mountSpec(v, fail))) },
  '--tmpfs': {
    apply: (v, o, fail) => {
      const [path = '', options = ''] = v.split(/:(.*)/s);
      if (!path.startsWith('/')) fail('expected /CONTAINER/PATH[:OPTIONS]');
      o.hostConfig.Tmpfs = { ...o.hostConfig.Tmpfs, [path]: options };
    },
  },
  '--read-only': { boolean: true, apply: (v, o) => (o.hostConfig.ReadonlyRootfs = v === 'true') },
  '--env': {
    apply: (v, o, fail) => {
      if (!/^[A-Za-z_][A-Za-z0-9_]*=/s.test(v)) fail('expected NAME=VALUE (to pass a variable from the host, use env_vars with host:NAME)');
      o.env.push(v);
    },
  },
  '--user': { apply: (v, o, fail) => (o.user = matching(v, /^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?$/, 'expected USER[:GROUP]', fail)) },
  '--workdir': { apply: (v, o, fail) => (o.workingDir = matching(v, /^\/\S*$/, 'expected an absolute path', fail)) },
  '--entrypoint': { apply: (v, o) => (o.entrypoint = [v]) },
  '--label': {
    apply: (v, o, fail) => {
      const eq = v.indexOf('=');
      const key = eq < 0 ? v : v.slice(0, eq);
      if (!key) fail('expected KEY=VALUE');
      if (key.startsWith('evalflow.')) fail('labels evalflow.* are set by evalflow');
      o.labels[key] = eq < 0 ? '' : v.slice(eq + 1);
    },
  },
  '--cap-add': { apply: (v, o) => (o.hostConfig.CapAdd = push(o.hostConfig.CapAdd, v)) },
  '--cap-drop': { apply: (v, o) => (o.hostConfig.CapDrop = push(o.hostConfig.CapDrop, v)) },
  '--security-opt': { apply: (v, o) => (o.hostConfig.SecurityOpt = push(o.hostConfig.SecurityOpt, v)) },
  '--ipc': { apply: (v, o, fail) => (o.hostConfig.IpcMode = matching(v, /^(host|private|shareable|none)$/, 'expected host, private, shareable or none', fail)) },
  '--privileged': { boolean: true, apply: (v, o) => (o.hostConfig.Privileged = v === 'true') },
  '--add-host': { apply: (v, o, fail) => (o.hostConfig.ExtraHosts = push(o.hostConfig.ExtraHosts, matching(v, /^[^:\s]+:\S+$/, 'expected HOST:IP', fail))) },
  '--stop-signal': { apply: (v, o, fail) => (o.stopSignal = matching(v, /^(SIG[A-Z0-9]+|\d+)$/, 'expected a signal name like SIGTERM', fail)) },
  '--rm': { boolean: true, apply: (_v, o) => o.warnings.push(`${EXTRA_DOCKER_ARGS_KEY}: --rm has no effect (evalflow removes its containers at teardown)`) },
  '--init': { boolean: true, apply: (_v, o) => o.warnings.push(`${EXTRA_DOCKER_ARGS_KEY}: --init has no effect (always on)`) },
  '--publish': { apply: (_v, o) => o.warnings.push(`${EXTRA_DOCKER_ARGS_KEY}: --publish has no effect (containers use host networking)`) },
  '--network': {
    apply: (v, o, fail) => {
      if (v !== 'host') fail('evalflow runs containers with host networking only');
      o.warnings.push(`${EXTRA_DOCKER_ARGS_KEY}: --network host has no effect (always on)`);
    },
  },
};
const ALIASES: Record<string, string> = {
  '-m': '--memory',
  '-v': '--volume',
  '-e': '--env',
  '-u': '--user',
  '-w': '--workdir',
  '-l': '--label',
  '-p': '--publish',
  '--net': '--network',
};

export function parseDockerArgs(text: string, key = EXTRA_DOCKER_ARGS_KEY): DockerArgs {
  const out: DockerArgs = { hostConfig: {}, env: [], labels: {}, warnings: [] };
  const words = splitWords(text, key);
  for (let i = 0; i < words.length; i++) {
    const word = words[i] as string;
    const eq = word.startsWith('--') ? word.indexOf('=') : -1;
    const written = eq < 0 ? word : word.slice(0, eq);
    const name = ALIASES[written] ?? written;
    const flag = FLAGS[name];
    if (!word.startsWith('-') || !flag) {
      const hint = word.startsWith('-') ? `unsupported docker flag ${written}` : `unexpected argument ${JSON.stringify(word)} (only flags go here)`;
      throw new ConfigError(`${key}: ${hint}; supported: ${[...Object.keys(FLAGS), ...Object.keys(ALIASES)].sort().join(' ')}`, key);
    }
    const fail = (problem: string): never => {
      throw new ConfigError(`${key}: ${written}: ${problem}`, key);
    };
    let value: string;
    if (eq >= 0) value = word.slice(eq + 1);
    else if (flag.boolean) value = 'true';
    else {
      const next = words[++i];
      if (next === undefined) fail('needs a value');
      value = next as string;
    }
    if (flag.boolean && !/^(true|false)$/.test(value)) fail('expected true or false');
    flag.apply(value, out, fail);
  }
  return out;
}

/** Words as a POSIX shell splits them (quotes, backslashes); expansions and operators are refused. */
export function splitWords(text: string, key = EXTRA_DOCKER_ARGS_KEY): string[] {
  const words: string[] = [];
  let word: string | null = null;
  const fail = (problem: string): never => {
    throw new ConfigError(`${key}: ${problem}`, key);
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    if (/\s/.test(ch)) {
      if (word !== null) words.push(word);
      word = null;
    } else if (ch === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) fail('unterminated single quote');
      word = (word ?? '') + text.slice(i + 1, end);
      i = end;
    } else if (ch === '"') {
      let inner = '';
      for (i++; i < text.length && text[i] !== '"'; i++) {
        if (text[i] === '\\' && /["\\$`]/.test(text[i + 1] ?? '')) inner += text[++i];
        else if (text[i] === '$' || text[i] === '`') fail('shell expansion ($, `) is not supported: write the value, or use env_vars');
        else inner += text[i];
      }
      if (i >= text.length) fail('unterminated double quote');
      word = (word ?? '') + inner;
    } else if (ch === '\\') {
      if (i + 1 >= text.length) fail('trailing backslash');
      word = (word ?? '') + text[++i];
    } else if (ch === '$' || ch === '`') {
      fail('shell expansion ($, `) is not supported: write the value, or use env_vars');
    } else if (/[;&|<>()]/.test(ch)) {
      fail(`shell operator ${JSON.stringify(ch)} is not supported (the value is docker flags, not a shell line)`);
    } else {
      word = (word ?? '') + ch;
    }
  }
  if (word !== null) words.push(word);
  return words;
}

/** Docker's size syntax: a number with an optional b/k/m/g suffix (binary units), e.g. 512m, 1.5g. */
function bytes(value: string, fail: (problem: string) => never): number {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)i?b?$/i.exec(value);
  if (!m) return fail(`expected a size like 512m or 2g, got ${JSON.stringify(value)}`);
  const power = { '': 0, b: 0, k: 1, m: 2, g: 3, t: 4 }[(m[2] as string).toLowerCase()] as number;
  return Math.round(Number(m[1]) * 1024 ** power);
}

function integer(value: string, fail: (problem: string) => never): number {
  if (!/^-?\d+$/.test(value)) fail(`expected an integer, got ${JSON.stringify(value)}`);
  return Number(value);
}

function matching(value: string, re: RegExp, expected: string, fail: (problem: string) => never): string {
  if (!re.test(value)) fail(`${expected}, got ${JSON.stringify(value)}`);
  return value;
}

/** `--gpus` as the docker CLI reads it: all | N | [driver=…,]count=…|device=…[,capabilities=…]. */
export function gpuRequest(value: string, fail: (problem: string) => never): DeviceRequest {
  const request: DeviceRequest = { Driver: '', Count: 0, DeviceIDs: [], Capabilities: [['gpu']], Options: {} };
  if (value === 'all') return { ...request, Count: -1 };
  if (/^\d+$/.test(value)) return { ...request, Count: Number(value) };
  // The docker CLI reads this as CSV: quotes only group, and device=/capabilities= take the bare items after them.
  const parts = value.replaceAll('"', '').split(',');
  const listFrom = (first: string, i: number): [string[], number] => {
    const items = [first];
    while (i + 1 < parts.length && !(parts[i + 1] as string).includes('=')) items.push(parts[++i] as string);
    return [items, i];
  };
  for (let i = 0; i < parts.length; i++) {
    const [k, v = ''] = (parts[i] as string).split('=');
    if (k === 'device') [request.DeviceIDs, i] = listFrom(v, i);
    else if (k === 'capabilities') {
      const [caps, next] = listFrom(v, i);
      request.Capabilities = [caps];
      i = next;
    } else if (k === 'count') request.Count = v === 'all' ? -1 : integer(v, fail);
    else if (k === 'driver') request.Driver = v;
    else fail(`expected all, a count, or device=ID[,ID…] / count=N / driver=… / capabilities=…, got ${JSON.stringify(value)}`);
  }
  if (!request.Count && !request.DeviceIDs?.length) fail('names no GPUs (device=… or count=…)');
  return request;
}

/** `--mount type=bind,source=/a,target=/b[,readonly]` or `type=tmpfs,target=/t[,tmpfs-size=…]`. */
function mountSpec(value: string, fail: (problem: string) => never): MountConfig[number] {
  const fields = new Map<string, string>();
  for (const part of value.split(',')) {
    const eq = part.indexOf('=');
    fields.set(eq < 0 ? part : part.slice(0, eq), eq < 0 ? 'true' : part.slice(eq + 1));
  }
  const type = fields.get('type') ?? 'volume';
  const target = fields.get('target') ?? fields.get('destination') ?? fields.get('dst');
  if (!target?.startsWith('/')) fail('needs target=/CONTAINER/PATH');
  const readOnly = ['true', '1'].includes(fields.get('readonly') ?? fields.get('ro') ?? 'false');
  if (type === 'bind') {
    const source = fields.get('source') ?? fields.get('src');
    if (!source?.startsWith('/')) fail('type=bind needs source=/HOST/PATH');
    return { Type: 'bind', Source: source as string, Target: target as string, ReadOnly: readOnly };
  }
  if (type === 'tmpfs') {
    const size = fields.get('tmpfs-size');
    return { Type: 'tmpfs', Source: '', Target: target as string, ...(size ? { TmpfsOptions: { SizeBytes: bytes(size, fail) } } : {}) } as MountConfig[number];
  }
  return fail(`type=${type} is not supported (bind or tmpfs)`);
}
