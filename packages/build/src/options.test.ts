import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { imageReferences } from './dockerfile-refs.js';
import { parseBuilderOption, parseCacheFrom, parseCacheTo, parseKeyValue, parseSecretOption, parseSshOption, splitCsv } from './options.js';
import { csv } from './builders/args.js';

const invalid = (err: Error & { code?: string }) => err.code === 'SLIPWAY_INVALID_ARG';

describe('parseBuilderOption', () => {
  it('reads kinds, addresses and buildx builder names', () => {
    assert.deepEqual(parseBuilderOption('docker'), { kind: 'docker' });
    assert.deepEqual(parseBuilderOption('buildctl=unix:///run/buildkit/buildkitd.sock'), { kind: 'buildctl', address: 'unix:///run/buildkit/buildkitd.sock' });
    assert.deepEqual(parseBuilderOption('buildx=tcp://host:1234'), { kind: 'buildx', address: 'tcp://host:1234' });
    assert.deepEqual(parseBuilderOption('buildx:farm'), { kind: 'buildx', name: 'farm' });
  });
  it('refuses unknown kinds and an address for buildah', () => {
    assert.throws(() => parseBuilderOption('kaniko'), invalid);
    assert.throws(() => parseBuilderOption('buildah=tcp://x:1'), invalid);
    assert.throws(() => parseBuilderOption('buildctl='), invalid);
  });
});

describe('cache options', () => {
  it('parses buildx syntax and the bare-reference shorthand', () => {
    assert.deepEqual(parseCacheFrom('type=registry,ref=reg.example/app:cache'), { type: 'registry', ref: 'reg.example/app:cache' });
    assert.deepEqual(parseCacheFrom('reg.example/app:1'), { type: 'registry', ref: 'reg.example/app:1' });
    assert.deepEqual(parseCacheFrom('type=local,src=/tmp/c'), { type: 'local', src: '/tmp/c' });
    assert.deepEqual(parseCacheTo('type=inline'), { type: 'inline' });
    assert.deepEqual(parseCacheTo('type=registry,ref=r/a:c,mode=max'), { type: 'registry', ref: 'r/a:c', mode: 'max' });
    assert.deepEqual(parseCacheTo('type=local,dest=/tmp/c'), { type: 'local', dest: '/tmp/c' });
  });
  it('refuses unsupported types and missing attributes', () => {
    assert.throws(() => parseCacheFrom('type=gha'), invalid);
    assert.throws(() => parseCacheTo('type=registry'), invalid);
    assert.throws(() => parseCacheTo('type=local,dest=/x,mode=most'), invalid);
  });
});

describe('secrets and ssh', () => {
  it('parses id/src/env like buildx', () => {
    assert.deepEqual(parseSecretOption('id=npm,src=/home/u/.npmrc'), { id: 'npm', src: '/home/u/.npmrc' });
    assert.deepEqual(parseSecretOption('id=tok,env=GITHUB_TOKEN'), { id: 'tok', env: 'GITHUB_TOKEN' });
    assert.deepEqual(parseSecretOption('id=TOKEN'), { id: 'TOKEN', env: 'TOKEN' });
    assert.throws(() => parseSecretOption('id=x,src=/a,env=B'), invalid);
    assert.throws(() => parseSecretOption('bogus'), invalid);
  });
  it('parses ssh forms', () => {
    assert.deepEqual(parseSshOption('default'), { id: 'default' });
    assert.deepEqual(parseSshOption('default=/k1,/k2'), { id: 'default', paths: ['/k1', '/k2'] });
    assert.throws(() => parseSshOption('=x'), invalid);
  });
});

describe('key=value and CSV', () => {
  it('splits pairs at the first = and takes a bare key from the environment', () => {
    assert.deepEqual(parseKeyValue('A=b=c', '--build-arg'), ['A', 'b=c']);
    assert.deepEqual(parseKeyValue('HOME_X', '--build-arg', { HOME_X: 'v' }), ['HOME_X', 'v']);
    assert.throws(() => parseKeyValue('NOPE', '--label'), invalid);
  });
  it('round-trips quoted fields', () => {
    const fields = ['type=image', 'name=a:1,b:2', 'x="q"'];
    assert.deepEqual(splitCsv(csv(fields)), fields);
  });
});

describe('imageReferences', () => {
  it('finds FROM, COPY --from and mount sources, resolving global ARGs and skipping stages and scratch', () => {
    const dockerfile = [
      'ARG BASE=127.0.0.1:5000/base:1',
      'ARG OTHER',
      'FROM --platform=$BUILDPLATFORM ${BASE} AS build',
      'RUN --mount=type=cache,from=ghcr.io/x/cache:1,target=/c true',
      'FROM scratch',
      'COPY --from=build /a /a',
      'COPY --from=quay.io/org/tool:2 \\',
      '  /bin/tool /bin/tool',
      'FROM $OTHER',
    ].join('\n');
    assert.deepEqual(imageReferences(dockerfile).sort(), ['127.0.0.1:5000/base:1', 'ghcr.io/x/cache:1', 'quay.io/org/tool:2']);
    assert.ok(imageReferences(dockerfile, { OTHER: 'alpine' }).includes('docker.io/library/alpine:latest'));
  });
});
