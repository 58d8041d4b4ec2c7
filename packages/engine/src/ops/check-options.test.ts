import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SlipwayError } from '@slipway/oci';
import { copyImage, pushArchive } from './copy-image.js';
import { getDigest, getManifest, listPlatforms, listTags } from './inspect.js';

/** The op's failure: a SlipwayError with SLIPWAY_INVALID_ARG, checked before anything is opened or sent. */
async function refusal(call: () => Promise<unknown>): Promise<string> {
  try {
    await call();
  } catch (err) {
    assert.ok(SlipwayError.is(err), `not a SlipwayError: ${String(err)}`);
    assert.equal(err.code, 'SLIPWAY_INVALID_ARG', err.message);
    return err.message;
  }
  assert.fail('accepted');
}

// Values a provider passes from plain JavaScript, Python or Go: missing, null, mistyped.
const loose = (value: unknown) => value as never;

describe('entry points refuse malformed options by field, before any work', () => {
  it('copyImage and pushArchive', async () => {
    assert.equal(await refusal(() => copyImage(loose(undefined))), 'copyImage: options must be an object, got undefined');
    assert.equal(await refusal(() => copyImage(loose({ destination: 'r.example/a:1' }))), 'copyImage: source is required');
    assert.equal(await refusal(() => copyImage(loose({ source: 'r.example/a:1', destination: '  ' }))), 'copyImage: destination must be a non-empty string, got "  "');
    assert.equal(await refusal(() => copyImage(loose({ source: 'a', destination: 'b', platforms: 5 }))), 'copyImage: platforms must be a platform string or a list of them, got 5');
    assert.equal(await refusal(() => copyImage(loose({ source: 'a', destination: 'b', jobs: '4' }))), 'copyImage: jobs must be a whole number, got "4"');
    assert.equal(await refusal(() => copyImage(loose({ source: 'a', destination: 'b', jobs: 1.5 }))), 'copyImage: jobs must be a whole number, got 1.5');
    assert.equal(await refusal(() => copyImage(loose({ source: 'a', destination: 'b', platform: 'linux/arm64' }))), 'copyImage: unknown option "platform" (did you mean "platforms"?)');
    assert.equal(await refusal(() => copyImage(loose({ source: 'a', destination: 'b', overWrite: true }))), 'copyImage: unknown option "overWrite" (did you mean "overwrite"?)');
    assert.match(await refusal(() => listTags(loose({ repository: 'r.example/a', paginate: true }))), /^listTags: unknown option "paginate"; it takes registries, insecure, proxy, certDirectories, signal, repository$/);
    // Undefined is no option at all (a spread of optional fields).
    await assert.rejects(copyImage(loose({ source: '', destination: 'b', platform: undefined })), /source must be a non-empty string/);
    assert.equal(await refusal(() => copyImage(loose({ source: 'a', destination: 'b', signal: {} }))), 'copyImage: signal must be an AbortSignal, got an object');
    assert.equal(await refusal(() => copyImage(loose({ source: 'a', destination: 'b', registries: {} }))), 'copyImage: registries must be a list of { address, username, password }, got an object');
    assert.equal(
      await refusal(() => copyImage(loose({ source: 'a', destination: 'b', proxy: 'http://u:secret@p:3128' }))),
      "copyImage: proxy must be 'environment', false or { httpProxy?, httpsProxy?, noProxy? } of strings, got a string",
    );
    assert.equal(
      await refusal(() => copyImage(loose({ source: 'a', destination: 'b', proxy: { httpsProxy: 3128 } }))),
      "copyImage: proxy must be 'environment', false or { httpProxy?, httpsProxy?, noProxy? } of strings, got an object",
    );
    assert.equal(await refusal(() => copyImage(loose({ source: 'a', destination: 'b', certDirectories: '/etc/docker/certs.d' }))), 'copyImage: certDirectories must be a list of strings, got "/etc/docker/certs.d"');
    assert.equal(await refusal(() => pushArchive(loose({ destination: 'b' }))), 'pushArchive: archive is required');
    assert.equal(await refusal(() => pushArchive(loose({ archive: 'x.tar', destination: 'b', cacheDir: true }))), 'pushArchive: cacheDir must be a directory or false, got a boolean');
  });

  it('never shows a registry entry\'s values (one is a password)', async () => {
    const message = await refusal(() => copyImage(loose({ source: 'a', destination: 'b', registries: [{ username: 'u', password: 'hunter2-secret' }] })));
    assert.equal(message, 'copyImage: registries entry 0 needs address as a string');
    const typed = await refusal(() => copyImage(loose({ source: 'a', destination: 'b', registries: [{ address: 'r.example', username: 'u', password: 12345678 }] })));
    assert.ok(!typed.includes('12345678'), typed);
  });

  it('the inspect ops', async () => {
    assert.equal(await refusal(() => getDigest(loose({}))), 'getDigest: reference is required');
    assert.equal(await refusal(() => getManifest(loose({ reference: 'r.example/a:1', platform: ['linux/amd64'] }))), 'getManifest: platform must be a string, got an array');
    assert.equal(await refusal(() => listPlatforms(loose(null))), 'listPlatforms: options must be an object, got null');
    assert.equal(await refusal(() => listTags(loose({ repository: 42 }))), 'listTags: repository must be a non-empty string, got 42');
    // A list where one platform names one manifest: said as such, before any request.
    await assert.rejects(
      getDigest({ reference: 'r.example/a:1', platform: 'linux/amd64,linux/arm64' }),
      (err: unknown) => SlipwayError.is(err) && err.code === 'SLIPWAY_INVALID_PLATFORM' && err.message === 'invalid platform "linux/amd64,linux/arm64": a list, where one platform names one manifest (want os/arch[/variant][:osversion], as linux/amd64)',
    );
  });
});
