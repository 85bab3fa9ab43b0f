/** Endpoint readiness: is something serving HTTP at the model URL? */
import { request } from 'undici';

/** The models route next to a chat/completions URL: http://h/v1/chat/completions → http://h/v1/models. */
export function modelsUrl(url: string): string {
  const u = new URL(url);
  u.pathname = `${u.pathname.replace(/\/+$/, '').replace(/\/(chat\/completions|completions)$/, '')}/models`;
  u.search = '';
  return u.toString();
}

/** null when the endpoint answers with any status below 500, else what went wrong. */
export async function probeEndpoint(url: string, apiKey?: string, timeoutMs = 5000): Promise<string | null> {
  try {
    const res = await request(modelsUrl(url), {
      method: 'GET',
      headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {},
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    await res.body.dump();
    return res.statusCode < 500 ? null : `HTTP ${res.statusCode}`;
  } catch (err) {
    const code = (err as { code?: string }).code;
    return code ? `${code}` : (err as Error).message;
  }
}

/** null when a deployment's health URL answers 200 (upstream's readiness check), else the last status or error. */
export async function probeHealth(url: string, timeoutMs = 5000): Promise<string | null> {
  try {
    const res = await request(url, { method: 'GET', headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    await res.body.dump();
    return res.statusCode === 200 ? null : `HTTP ${res.statusCode}`;
  } catch (err) {
    const code = (err as { code?: string }).code;
    return code ? `${code}` : (err as Error).message;
  }
}
