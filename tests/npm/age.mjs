// A thin command-line wrapper around the age-encryption npm package (an
// independent age implementation), driven by tests/test_age_pq_interop.py.
//
//   node age.mjs keygen                      prints a new hybrid identity, then its recipient
//   node age.mjs encrypt [--armor] RECIPIENT...   stdin -> stdout
//   node age.mjs decrypt IDENTITY_FILE            stdin (binary or armored) -> stdout
//   node age.mjs recipient IDENTITY_FILE          prints the recipient of each identity
//
// Identities are read from a file, never from the command line.
import { readFileSync } from "node:fs";
import * as age from "age-encryption";

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return new Uint8Array(Buffer.concat(chunks));
}

function writeStdout(data) {
  return new Promise((resolve, reject) =>
    process.stdout.write(data, (err) => (err ? reject(err) : resolve())),
  );
}

async function keygen() {
  const identity = await age.generateHybridIdentity();
  const recipient = await age.identityToRecipient(identity);
  await writeStdout(`${identity}\n${recipient}\n`);
}

async function encrypt(args) {
  const armor = args[0] === "--armor";
  const recipients = armor ? args.slice(1) : args;
  const e = new age.Encrypter();
  for (const r of recipients) e.addRecipient(r);
  const sealed = await e.encrypt(await readStdin());
  await writeStdout(armor ? age.armor.encode(sealed) : sealed);
}

function identities(path) {
  return readFileSync(path, "utf8")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith("#"));
}

async function recipient([identityFile]) {
  for (const identity of identities(identityFile)) {
    await writeStdout(`${await age.identityToRecipient(identity)}\n`);
  }
}

async function decrypt([identityFile]) {
  const d = new age.Decrypter();
  for (const identity of identities(identityFile)) d.addIdentity(identity);
  let input = await readStdin();
  const head = Buffer.from(input.subarray(0, 64)).toString("latin1").trimStart();
  if (head.startsWith("-----BEGIN")) input = age.armor.decode(Buffer.from(input).toString("ascii"));
  await writeStdout(await d.decrypt(input));
}

const [command, ...args] = process.argv.slice(2);
const commands = { keygen, encrypt, decrypt, recipient };
if (!(command in commands)) {
  process.stderr.write("usage: node age.mjs keygen | encrypt [--armor] RECIPIENT... | decrypt|recipient IDENTITY_FILE\n");
  process.exit(2);
}
try {
  await commands[command](args);
} catch (err) {
  process.stderr.write(`age.mjs: ${err.message}\n`);
  process.exit(1);
}
