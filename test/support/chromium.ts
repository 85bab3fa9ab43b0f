/**
 * Headless Chromium (Debian `chromium`) driven over the DevTools protocol: open a page, collect its
 * console errors and uncaught exceptions, measure elements, take a screenshot. For checking that
 * HTML reports render as a person would see them.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { WebSocket } from 'undici';

export function chromiumPath(): string | null {
  for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
    const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).stdout.trim();
    if (found) return found;
  }
  return null;
}

export interface RenderedPage {
  /** Console errors, uncaught exceptions and failed loads, as text. */
  errors: string[];
  /** What `measure` returned, evaluated in the page after load. */
  measured: unknown;
  screenshotPath: string;
}

/** Loads a local HTML file, evaluates `measure` (a JS expression), and saves a PNG screenshot. */
export async function renderPage(htmlFile: string, measure: string, screenshotPath: string): Promise<RenderedPage> {
  const binary = chromiumPath();
  if (!binary) throw new Error('chromium is not installed (Debian: apt-get install chromium)');
  const profile = mkdtempSync(join(tmpdir(), 'evalflow-chromium-'));
  const child = spawn(
    binary,
    ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--remote-debugging-port=0', `--user-data-dir=${profile}`, '--window-size=1200,1600', 'about:blank'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  try {
    const browserUrl = await new Promise<string>((resolve, reject) => {
      let stderr = '';
      const timer = setTimeout(() => reject(new Error(`chromium did not start: ${stderr}`)), 60_000);
      child.stderr?.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        const match = /DevTools listening on (ws:\/\/\S+)/.exec(stderr);
        if (match?.[1]) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      });
      child.once('exit', (code) => reject(new Error(`chromium exited (${code}): ${stderr}`)));
    });
    const port = new URL(browserUrl).port;
    const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as Array<{ type: string; webSocketDebuggerUrl: string }>;
    const page = targets.find((t) => t.type === 'page');
    if (!page) throw new Error('chromium has no page target');
    const cdp = await CdpSession.open(page.webSocketDebuggerUrl);
    try {
      const errors: string[] = [];
      cdp.on('Runtime.consoleAPICalled', (p) => {
        const params = p as { type: string; args: Array<{ value?: unknown; description?: string }> };
        if (params.type === 'error' || params.type === 'assert') errors.push(`console.${params.type}: ${params.args.map((a) => String(a.value ?? a.description)).join(' ')}`);
      });
      cdp.on('Runtime.exceptionThrown', (p) => errors.push(`exception: ${JSON.stringify(p)}`));
      cdp.on('Log.entryAdded', (p) => {
        const entry = (p as { entry: { level: string; text: string; url?: string } }).entry;
        if (entry.level === 'error') errors.push(`log: ${entry.text} ${entry.url ?? ''}`);
      });
      await cdp.send('Runtime.enable');
      await cdp.send('Log.enable');
      await cdp.send('Page.enable');
      const loaded = cdp.once('Page.loadEventFired');
      await cdp.send('Page.navigate', { url: pathToFileURL(htmlFile).href });
      await loaded;
      const evaluated = (await cdp.send('Runtime.evaluate', { expression: measure, returnByValue: true })) as { result: { value: unknown } };
      const shot = (await cdp.send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true })) as { data: string };
      writeFileSync(screenshotPath, Buffer.from(shot.data, 'base64'));
      return { errors, measured: evaluated.result.value, screenshotPath };
    } finally {
      cdp.close();
    }
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)));
    rmSync(profile, { recursive: true, force: true });
  }
}

class CdpSession {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly listeners = new Map<string, Array<(params: unknown) => void>>();

  private constructor(private readonly socket: WebSocket) {
    socket.addEventListener('message', (event) => {
      const message = JSON.parse(String(event.data)) as { id?: number; method?: string; params?: unknown; result?: unknown; error?: { message: string } };
      if (message.id !== undefined) {
        const waiter = this.pending.get(message.id);
        this.pending.delete(message.id);
        if (message.error) waiter?.reject(new Error(message.error.message));
        else waiter?.resolve(message.result);
      } else if (message.method) {
        for (const listener of this.listeners.get(message.method) ?? []) listener(message.params);
      }
    });
  }

  static open(url: string): Promise<CdpSession> {
    const socket = new WebSocket(url);
    return new Promise((resolve, reject) => {
      socket.addEventListener('open', () => resolve(new CdpSession(socket)));
      socket.addEventListener('error', () => reject(new Error(`cannot connect to ${url}`)));
    });
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.nextId++;
    this.socket.send(JSON.stringify({ id, method, params }));
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  on(method: string, listener: (params: unknown) => void): void {
    this.listeners.set(method, [...(this.listeners.get(method) ?? []), listener]);
  }

  once(method: string): Promise<unknown> {
    return new Promise((resolve) => this.on(method, resolve));
  }

  close(): void {
    this.socket.close();
  }
}
