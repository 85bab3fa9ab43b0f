/**
 * The failure converter of encrypting clients and workers (see codec.ts): failure messages and stack
 * traces go into an encoded payload, which the payload codec then encrypts. CommonJS, because the SDK
 * loads it with `require` and bundles it into the encrypting workers' workflow code.
 */
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
