/**
 * V8 settings for the short-lived CLI process, imported by `main.ts` before anything else so that
 * they are in place before undici compiles its HTTP parser.
 * @module
 */
import { setFlagsFromString } from 'node:v8';

// undici parses HTTP with llhttp compiled to WebAssembly. V8 compiles it with Liftoff first, and once
// the parser runs hot it recompiles it with TurboFan on a background thread. A CLI run is over by then,
// and Node's exit waits for that compile to finish: 60–90 ms after the 'exit' event on every command
// that spoke HTTP (measured on a no-op copy on a 2-core VM: 0.30 s → 0.24 s). Liftoff's code parses
// as fast for our traffic: bodies go through llhttp untouched, and a 205 MB copy was no slower. A
// long-lived host (the providers, a program using the library) keeps V8's default.
setFlagsFromString('--liftoff-only');
