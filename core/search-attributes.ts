/** evalflow's custom search attributes (registered on the namespace; set on every workflow). */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const SEARCH_ATTRIBUTES = {
  invocation: defineSearchAttributeKey('EvalInvocation', SearchAttributeType.KEYWORD),
  task: defineSearchAttributeKey('EvalTask', SearchAttributeType.KEYWORD),
  model: defineSearchAttributeKey('EvalModel', SearchAttributeType.KEYWORD),
  backend: defineSearchAttributeKey('EvalBackend', SearchAttributeType.KEYWORD),
  stage: defineSearchAttributeKey('EvalStage', SearchAttributeType.KEYWORD),
  /** A nightly's verdict (core/nightly.ts NIGHTLY_VERDICTS). */
  verdict: defineSearchAttributeKey('EvalVerdict', SearchAttributeType.KEYWORD),
} as const;
