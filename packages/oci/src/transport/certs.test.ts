import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { InvalidArgumentError } from '../errors.js';
import { defaultCertDirectories, readHostCertificates } from './certs.js';

async function tree(files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'slipway-certs-unit-'));
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(root, path, '..'), { recursive: true });
    await writeFile(join(root, path), text);
  }
  return root;
}

test('defaults: the per-user containers root, then the system containers and Docker roots', () => {
  assert.deepEqual(defaultCertDirectories({ XDG_CONFIG_HOME: '/x/config', HOME: '/home/u' }), ['/x/config/containers/certs.d', '/etc/containers/certs.d', '/etc/docker/certs.d']);
  assert.equal(defaultCertDirectories({ HOME: '/home/u' })[0], '/home/u/.config/containers/certs.d');
});

test('reads *.crt as CAs and *.cert/*.key pairs from the first root with a directory, ignoring other files', async () => {
  const first = await tree({ 'other:5000/ca.crt': 'A' });
  const second = await tree({ 'reg.corp:5000/b.crt': 'B', 'reg.corp:5000/a.crt': 'A', 'reg.corp:5000/me.cert': 'C', 'reg.corp:5000/me.key': 'K', 'reg.corp:5000/notes.txt': 'x' });
  const third = await tree({ 'reg.corp:5000/ca.crt': 'never read' });
  try {
    const found = await readHostCertificates([join(first, 'absent'), first, second, third], 'reg.corp:5000');
    assert.deepEqual(found, { directory: join(second, 'reg.corp:5000'), ca: ['A', 'B'], cert: ['C'], key: ['K'] });
    assert.equal(await readHostCertificates([first, second], 'nothing.corp'), undefined);
  } finally {
    await Promise.all([first, second, third].map((d) => rm(d, { recursive: true, force: true })));
  }
});

test('an empty directory answers alone (later roots unread); symlinked files are followed', async () => {
  const first = await tree({ 'reg.corp/README': 'no certificates here' });
  const second = await tree({ 'reg.corp/ca.crt': 'B' });
  try {
    assert.equal(await readHostCertificates([first, second], 'reg.corp'), undefined);
    await symlink(join(second, 'reg.corp', 'ca.crt'), join(first, 'reg.corp', 'linked.crt'));
    assert.deepEqual((await readHostCertificates([first, second], 'reg.corp'))?.ca, ['B']);
  } finally {
    await Promise.all([first, second].map((d) => rm(d, { recursive: true, force: true })));
  }
});

test('half a client pair is an error naming the file; a registry name cannot climb out of the root', async () => {
  const root = await tree({ 'a.corp/client.key': 'K', 'b.corp/client.cert': 'C', 'ca.crt': 'top-level' });
  try {
    await assert.rejects(readHostCertificates([root], 'a.corp'), (err: unknown) => err instanceof InvalidArgumentError && /client key .*a\.corp\/client\.key has no certificate client\.cert/.test(err.message));
    await assert.rejects(readHostCertificates([root], 'b.corp'), (err: unknown) => err instanceof InvalidArgumentError && /client certificate .*client\.cert has no key client\.key/.test(err.message));
    for (const name of ['..', '.', '', 'a/../..', 'x\\y']) assert.equal(await readHostCertificates([join(root, 'a.corp')], name), undefined, name);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
