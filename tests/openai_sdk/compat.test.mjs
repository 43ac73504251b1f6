// OpenAI compatibility of `zumik sim`, proven with the official OpenAI Node SDK (v4):
// completions (batches, token ids, n), chat (streaming with usage and n, and not), model listing,
// and typed errors.
// run.sh starts the simulator and sets ZUMIK_SIM_URL.
import test from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const baseURL = `${process.env.ZUMIK_SIM_URL}/v1`;
const model = 'meta-llama/Llama-3.1-8B-Instruct';
const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, timeout: 30_000 });

test('completions: text, usage and the replica header', async () => {
  const { data, response } = await client.completions
    .create({ model, prompt: 'Once upon a time', max_tokens: 7, ignore_eos: true })
    .withResponse();
  assert.equal(response.headers.get('x-zumik-replica'), 'replica-0');
  assert.equal(data.object, 'text_completion');
  assert.equal(data.choices[0].text.length > 0, true);
  assert.equal(data.choices[0].finish_reason, 'length');
  assert.equal(data.usage.completion_tokens, 7);
  assert.equal(data.usage.prompt_tokens, 4); // 16 bytes at ~4 bytes per token
  assert.equal(data.usage.total_tokens, 11);
});

test('chat: streaming with include_usage ends with a usage chunk', async () => {
  const stream = await client.chat.completions.create({
    model,
    messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Hi' }],
    max_completion_tokens: 6,
    ignore_eos: true,
    stream: true,
    stream_options: { include_usage: true },
  });
  let content = '';
  let role = null;
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.choices.length > 0) {
      const choice = chunk.choices[0];
      role ??= choice.delta.role ?? null;
      content += choice.delta.content ?? '';
      finish = choice.finish_reason ?? finish;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(role, 'assistant');
  assert.equal(finish, 'length');
  assert.ok(content.length > 0);
  assert.equal(usage.completion_tokens, 6);
  assert.ok(usage.prompt_tokens > 0);
});

test('chat: non-streaming answer and cached tokens on a repeated prompt', async () => {
  const request = {
    model,
    messages: [{ role: 'user', content: 'x'.repeat(4 * 200) }],
    max_tokens: 3,
    ignore_eos: true,
  };
  const first = await client.chat.completions.create(request);
  assert.equal(first.choices[0].message.role, 'assistant');
  assert.equal(first.usage.completion_tokens, 3);
  const second = await client.chat.completions.create(request);
  assert.ok(second.usage.prompt_tokens_details.cached_tokens >= 192);
});

test('completions: a batch of prompts and of token ids, with n, as vLLM answers them', async () => {
  const batch = await client.completions.create({
    model, prompt: ['first prompt', 'second prompt'], n: 2, max_tokens: 3, ignore_eos: true, seed: 1,
  });
  assert.deepEqual(batch.choices.map((c) => c.index), [0, 1, 2, 3]);
  assert.equal(new Set(batch.choices.map((c) => c.text)).size, 4);
  assert.equal(batch.usage.prompt_tokens, 3 + 4);
  assert.equal(batch.usage.completion_tokens, 12);
  const ids = await client.completions.create({
    model, prompt: [[1, 2, 3], [4, 5]], max_tokens: 2, ignore_eos: true,
  });
  assert.equal(ids.choices.length, 2);
  assert.equal(ids.usage.prompt_tokens, 5);
});

test('chat: n choices streamed, each with its own finish', async () => {
  const stream = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'Hi' }],
    n: 3,
    max_completion_tokens: 4,
    ignore_eos: true,
    stream: true,
    stream_options: { include_usage: true },
  });
  const content = ['', '', ''];
  const finishes = [0, 0, 0];
  let usage = null;
  for await (const chunk of stream) {
    for (const choice of chunk.choices) {
      content[choice.index] += choice.delta.content ?? '';
      if (choice.finish_reason) finishes[choice.index] += 1;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  assert.deepEqual(finishes, [1, 1, 1]);
  assert.ok(content.every((text) => text.length === 16));
  assert.equal(usage.completion_tokens, 12);
});

test('models.list names the served model', async () => {
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), [model]);
});

test('an unknown model is a NotFoundError (404)', async () => {
  await assert.rejects(
    client.completions.create({ model: 'no-such-model', prompt: 'x' }),
    (error) => error instanceof OpenAI.NotFoundError && error.status === 404,
  );
});

test('a bad request is a BadRequestError (400) and names the parameter', async () => {
  await assert.rejects(
    client.completions.create({ model, prompt: 'x', max_tokens: -1 }),
    (error) => error instanceof OpenAI.BadRequestError && error.status === 400 &&
      /max_tokens/.test(error.message),
  );
});
