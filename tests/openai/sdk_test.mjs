// OpenAI's official Node SDK, unchanged, against sg-edge's /v1 (run by tests/openai/run.sh).
// Every check asserts what a client relies on; a failure names the call and exits 1.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(process.env.SG_SDK_DIR + "/package.json");
const OpenAI = require("openai");
const { toFile } = require("openai");

const baseURL = process.env.SG_BASE_URL;
const apiKey = process.env.SG_API_KEY;
const cli = process.env.SG_CLI;
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60000 });
const JFK = "../shared/data/audio/jfk.wav";
const IMAGE = "../shared/data/images/coffee.jpg";

let failed = 0, passed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
  }
}

async function expectError(promise, status, code) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIError, `an APIError, got ${e}`);
    assert.equal(e.status, status, `status ${e.status}: ${e.message}`);
    if (code) assert.equal(e.code, code);
    assert.ok(e.error && typeof e.error.message === "string" && e.error.message.length > 0);
    return e;
  }
  assert.fail(`expected HTTP ${status}`);
}

const models = (await client.models.list()).data;
const byKind = (k) => models.filter((m) => m.kind === k).map((m) => m.id);
const chatModel = byKind("chat").find((id) => id !== "rule-based");
const asrModel = byKind("transcription")[0];
const ttsModel = byKind("speech")[0];
const embedModel = byKind("embeddings")[0];

await check("models.list: every kind of model, the rule-based responder too", async () => {
  for (const m of models) {
    assert.equal(m.object, "model");
    assert.equal(typeof m.created, "number");
  }
  assert.ok(byKind("chat").includes("rule-based"));
  assert.ok(chatModel && asrModel && ttsModel && embedModel, JSON.stringify(models));
  const one = await client.models.retrieve(asrModel);
  assert.equal(one.id, asrModel);
});

const ask = { role: "user", content: "Describe what is in front of me." };
await check("chat: plain, greedy, deterministic, with usage", async () => {
  const a = await client.chat.completions.create({ model: chatModel, messages: [ask], max_tokens: 8, temperature: 0 });
  const b = await client.chat.completions.create({ model: chatModel, messages: [ask], max_tokens: 8, temperature: 0 });
  assert.equal(a.object, "chat.completion");
  assert.equal(a.model, chatModel);
  assert.equal(a.choices.length, 1);
  assert.equal(a.choices[0].message.role, "assistant");
  assert.ok(a.choices[0].message.content.length > 0);
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  assert.equal(a.usage.completion_tokens, 8);
  assert.equal(a.choices[0].finish_reason, "length");
  assert.ok(a.usage.prompt_tokens > 10);
  assert.equal(a.usage.total_tokens, a.usage.prompt_tokens + a.usage.completion_tokens);
});

await check("chat: sampling with a seed repeats; another seed may differ", async () => {
  const req = (seed) => client.chat.completions.create({ model: chatModel, messages: [ask], max_tokens: 12, temperature: 1.2, seed });
  const a = await req(7), b = await req(7);
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  const outs = new Set();
  for (const s of [1, 2, 3, 4, 5]) outs.add((await req(s)).choices[0].message.content);
  assert.ok(outs.size > 1, "five seeds gave one text");
});

await check("chat: system and earlier turns, the rule-based responder", async () => {
  const r = await client.chat.completions.create({
    model: "rule-based",
    messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "hi" },
               { role: "assistant", content: "Hello!" }, { role: "user", content: "What time is it?" }],
  });
  assert.match(r.choices[0].message.content, /\d\d:\d\d/);
  assert.equal(r.choices[0].finish_reason, "stop");
});

await check("chat: streamed chunks concatenate to the plain answer, then usage", async () => {
  const plain = await client.chat.completions.create({ model: chatModel, messages: [ask], max_tokens: 10 });
  const stream = await client.chat.completions.create({
    model: chatModel, messages: [ask], max_tokens: 10, stream: true, stream_options: { include_usage: true },
  });
  let text = "", chunks = 0, finish = null, usage = null;
  for await (const c of stream) {
    assert.equal(c.object, "chat.completion.chunk");
    if (c.choices.length) {
      text += c.choices[0].delta.content ?? "";
      finish = c.choices[0].finish_reason ?? finish;
    }
    if (c.usage) usage = c.usage;
    chunks++;
  }
  assert.ok(chunks >= 3, `${chunks} chunks`);
  assert.equal(text, plain.choices[0].message.content);
  assert.equal(finish, "length");
  assert.equal(usage.completion_tokens, 10);
});

await check("chat: an image as a data URL is the scene", async () => {
  const b64 = fs.readFileSync(IMAGE).toString("base64");
  const r = await client.chat.completions.create({
    model: "rule-based",
    messages: [{ role: "user", content: [{ type: "text", text: "What am I looking at?" },
                                          { type: "image_url", image_url: { url: `data:image/jpeg;base64,${b64}` } }] }],
  });
  assert.match(r.smartglass.visual_context, /^Scene appears to be: /);
  assert.ok(r.choices[0].message.content.length > 0);
});

await check("chat: an http image URL is refused (nothing is downloaded)", async () => {
  const e = await expectError(client.chat.completions.create({
    model: chatModel,
    messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "https://example.com/a.jpg" } }] }],
  }), 400);
  assert.match(e.error.message, /downloads nothing/);
});

await check("chat: a model that is not loaded is 404 model_not_found", async () => {
  await expectError(client.chat.completions.create({ model: "gpt-4o", messages: [ask] }), 404, "model_not_found");
});

await check("a wrong key is 401 (AuthenticationError)", async () => {
  const bad = new OpenAI({ baseURL, apiKey: "sk-wrong", maxRetries: 0 });
  const e = await expectError(bad.models.list(), 401, "invalid_api_key");
  assert.ok(e instanceof OpenAI.AuthenticationError);
});

// Transcriptions: the server's result must be `sg transcribe`'s on the same file and model.
const cliJson = (fmt, extra = []) =>
  execFileSync(cli, ["transcribe", "--model", "tests/fixtures/whisper_ml/ggml-model.bin", "--precision", "int8",
                     "--response-format", fmt, ...extra, JFK], { encoding: "utf8" });
const file = async () => toFile(fs.readFileSync(JFK), "jfk.wav", { type: "audio/wav" });

await check("transcriptions: json equals sg transcribe", async () => {
  const r = await client.audio.transcriptions.create({ model: "whisper-1", file: await file() });
  assert.equal(typeof r.text, "string");
  assert.equal(r.text, JSON.parse(cliJson("json")).text);
});

for (const fmt of ["text", "srt", "vtt"]) {
  await check(`transcriptions: ${fmt} equals sg transcribe`, async () => {
    const r = await client.audio.transcriptions.create({ model: asrModel, file: await file(), response_format: fmt });
    assert.equal(typeof r, "string");
    assert.equal(r, cliJson(fmt));
    if (fmt === "vtt") assert.match(r, /^WEBVTT\n/);
    if (fmt === "srt") assert.match(r, /^1\n\d\d:\d\d:\d\d,\d\d\d --> /);
  });
}

await check("transcriptions: verbose_json with word and segment timestamps", async () => {
  const r = await client.audio.transcriptions.create({
    model: "whisper-1", file: await file(), response_format: "verbose_json",
    timestamp_granularities: ["word", "segment"], temperature: 0,
  });
  const want = JSON.parse(cliJson("verbose_json", ["--word-timestamps"]));
  assert.equal(r.task, "transcribe");
  assert.equal(typeof r.language, "string");
  assert.ok(Math.abs(r.duration - 11.0) < 0.1, `duration ${r.duration}`);
  assert.ok(r.segments.length >= 1);
  for (const k of ["id", "seek", "start", "end", "text", "tokens", "temperature", "avg_logprob", "compression_ratio", "no_speech_prob"])
    assert.ok(k in r.segments[0], `segment.${k}`);
  assert.ok(Array.isArray(r.words) && r.words.length >= 1);
  for (const w of r.words) assert.ok(w.end >= w.start, JSON.stringify(w));
  assert.deepEqual(r.segments, want.segments);
  assert.deepEqual(r.words, want.words);
});

await check("translations: verbose_json says translate", async () => {
  const r = await client.audio.translations.create({ model: "whisper-1", file: await file(), response_format: "verbose_json" });
  assert.equal(r.task, "translate");
  assert.ok(Array.isArray(r.segments));
});

await check("transcriptions: a file that is not audio is 400", async () => {
  await expectError(client.audio.transcriptions.create({
    model: "whisper-1", file: await toFile(Buffer.from("not audio at all"), "x.wav", { type: "audio/wav" }) }), 400);
});

await check("speech: mp3 by default, wav, opus, flac, pcm", async () => {
  const magic = { mp3: null, wav: "RIFF", opus: "OggS", flac: "fLaC" };
  for (const fmt of [undefined, "wav", "opus", "flac", "pcm"]) {
    const res = await client.audio.speech.create({ model: "tts-1", voice: "alloy", input: "The crossing is clear.", response_format: fmt });
    const buf = Buffer.from(await res.arrayBuffer());
    assert.ok(buf.length > 1000, `${fmt}: ${buf.length} bytes`);
    const m = magic[fmt ?? "mp3"];
    if (m) assert.equal(buf.subarray(0, 4).toString("latin1"), m, `${fmt} magic`);
    if (!fmt) assert.ok(buf[0] === 0xff || buf.subarray(0, 3).toString() === "ID3", "mp3 frame");
  }
});

await check("speech: an unknown voice is 400", async () => {
  await expectError(client.audio.speech.create({ model: ttsModel, voice: "nobody", input: "hi" }), 400);
});

await check("embeddings: texts (base64 by the SDK's default) and an image, unit length", async () => {
  const r = await client.embeddings.create({ model: embedModel, input: ["a photo of a cup of coffee", "a street at night"] });
  assert.equal(r.data.length, 2);
  const dim = r.data[0].embedding.length;
  assert.ok(dim > 0);
  for (const d of r.data) {
    const norm = Math.sqrt(d.embedding.reduce((s, x) => s + x * x, 0));
    assert.ok(Math.abs(norm - 1) < 1e-3, `norm ${norm}`);
  }
  assert.ok(r.usage.prompt_tokens > 4);
  const f = await client.embeddings.create({ model: embedModel, input: "a photo of a cup of coffee", encoding_format: "float" });
  for (let i = 0; i < dim; i++) assert.ok(Math.abs(f.data[0].embedding[i] - r.data[0].embedding[i]) < 1e-5);
  const b64 = fs.readFileSync(IMAGE).toString("base64");
  const img = await client.embeddings.create({ model: embedModel, input: `data:image/jpeg;base64,${b64}` });
  assert.equal(img.data[0].embedding.length, dim);
});

await check("embeddings: a model of another kind is 400", async () => {
  await expectError(client.embeddings.create({ model: asrModel, input: "x" }), 400);
});

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
