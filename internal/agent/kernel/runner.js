// The hutch JavaScript/TypeScript kernel: one persistent vm context per
// process. The agent sends cells as JSON lines on fd 3 and reads events
// back on the same socket. Top-level declarations are rewritten into
// assignments to context globals (so a later cell can re-declare them and
// see them), the last expression becomes the cell's value, and the body
// runs inside an async function (so top-level await works). TypeScript is
// stripped of types by sucrase first; sucrase and acorn keep line numbers.
'use strict';
const vm = require('vm');
const net = require('net');
const util = require('util');
const path = require('path');
const readline = require('readline');
const Module = require('module');

const lang = process.argv[2] === 'typescript' ? 'typescript' : 'javascript';
const libDir = process.env.HUTCH_NODE_MODULES || '/usr/local/lib/node_modules';
const libRequire = Module.createRequire(path.join(libDir, 'hutch-kernel.js'));
let acorn, sucrase;
try {
  acorn = libRequire('acorn');
  if (lang === 'typescript') sucrase = libRequire('sucrase');
} catch (e) {
  process.stderr.write(`hutch kernel: ${e.message}\nthe image needs the npm packages acorn and sucrase in ${libDir}\n`);
  process.exit(3);
}

const chan = new net.Socket({ fd: 3, readable: true, writable: true });
if (chan._handle && chan._handle.setBlocking) chan._handle.setBlocking(true);
const send = (m) => chan.write(JSON.stringify(m) + '\n');

let current = null; // the running cell: {id, abort}
let count = 0;

// All output of the process goes to the running cell, as it is written.
for (const name of ['stdout', 'stderr']) {
  process[name].write = (chunk, enc, cb) => {
    if (typeof enc === 'function') cb = enc;
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    if (current) send({ t: 'out', id: current.id, name, text });
    if (cb) process.nextTick(cb);
    return true;
  };
}

const display = (obj) => {
  if (!current) return;
  send({ t: 'result', id: current.id, data: bundle(obj), display: true });
};

function bundle(v) {
  if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0 &&
      Object.keys(v).every((k) => k.includes('/'))) {
    const data = {};
    for (const [k, x] of Object.entries(v)) data[k] = typeof x === 'string' ? x : JSON.stringify(x);
    return data;
  }
  return { 'text/plain': typeof v === 'string' ? util.inspect(v) : util.inspect(v, { depth: 4 }) };
}

const userRequire = Module.createRequire(path.join(process.cwd(), 'hutch-cell.js'));
const cellModule = { exports: {} };
const sandbox = {
  console, process, Buffer, require: userRequire, module: cellModule, exports: cellModule.exports,
  __dirname: process.cwd(), __filename: path.join(process.cwd(), 'hutch-cell.js'), display,
  setTimeout, clearTimeout, setInterval, clearInterval, setImmediate, clearImmediate, queueMicrotask,
  structuredClone, URL, URLSearchParams, TextEncoder, TextDecoder, AbortController, AbortSignal,
  Event, EventTarget, atob, btoa, performance, fetch: globalThis.fetch,
};
vm.createContext(sandbox);
sandbox.global = vm.runInContext('globalThis', sandbox);

// declared collects the names a declaration pattern binds.
function declared(p, out) {
  switch (p.type) {
    case 'Identifier': out.push(p.name); break;
    case 'ObjectPattern': for (const q of p.properties) declared(q.type === 'RestElement' ? q.argument : q.value, out); break;
    case 'ArrayPattern': for (const q of p.elements) if (q) declared(q, out); break;
    case 'RestElement': declared(p.argument, out); break;
    case 'AssignmentPattern': declared(p.left, out); break;
  }
  return out;
}

function rewrite(src) {
  const ast = acorn.parse(src, {
    ecmaVersion: 'latest', sourceType: 'module', allowAwaitOutsideFunction: true,
    allowReturnOutsideFunction: true, allowHashBang: true, locations: true,
  });
  const edits = [];
  const names = [];
  const hoist = [];
  const text = (n) => src.slice(n.start, n.end);
  const declare = (node) => {
    switch (node.type) {
      case 'VariableDeclaration': {
        const parts = [];
        for (const d of node.declarations) {
          const ns = declared(d.id, []);
          names.push(...ns);
          if (d.init) parts.push(`(${text(d.id)} = ${text(d.init)})`);
          else if (node.kind !== 'var') parts.push(...ns.map((n) => `(${n} = undefined)`));
        }
        return parts.length ? `;(${parts.join(', ')});` : ';';
      }
      case 'FunctionDeclaration':
        names.push(node.id.name);
        hoist.push(`globalThis[${JSON.stringify(node.id.name)}] = ${node.id.name};`);
        return text(node);
      case 'ClassDeclaration':
        names.push(node.id.name);
        return `;${node.id.name} = ${text(node)};`;
    }
    return null;
  };
  ast.body.forEach((node, i) => {
    let out = null;
    if (node.type === 'ExportNamedDeclaration' || node.type === 'ExportDefaultDeclaration') {
      out = node.declaration ? (declare(node.declaration) ?? text(node.declaration)) : ';';
    } else if (node.type === 'ImportDeclaration') {
      const mod = `require(${JSON.stringify(node.source.value)})`;
      out = node.specifiers.map((s) => {
        names.push(s.local.name);
        if (s.type === 'ImportNamespaceSpecifier') return `${s.local.name} = ${mod};`;
        if (s.type === 'ImportDefaultSpecifier') return `${s.local.name} = ((m) => m && m.__esModule ? m.default : m)(${mod});`;
        return `${s.local.name} = ${mod}[${JSON.stringify(s.imported.name ?? s.imported.value)}];`;
      }).join(' ') || `${mod};`;
    } else if (node.type === 'ExpressionStatement' && i === ast.body.length - 1) {
      out = `return (${text(node.expression)});`;
    } else {
      out = declare(node);
    }
    if (out !== null) edits.push({ start: node.start, end: node.end, out });
  });
  let body = src;
  for (const e of edits.reverse()) {
    // Keep the line count, so errors point at the cell's own lines.
    const lost = (src.slice(e.start, e.end).match(/\n/g) || []).length - (e.out.match(/\n/g) || []).length;
    body = body.slice(0, e.start) + e.out + '\n'.repeat(Math.max(0, lost)) + body.slice(e.end);
  }
  return { code: `(async () => {${hoist.join(' ')}${body}\n})()`, names };
}

function errorEvent(id, err, filename, compiling, lines) {
  const ev = { t: 'error', id, name: 'Error', value: '', traceback: [], line: 0 };
  if (err instanceof Error || (err && typeof err === 'object' && 'stack' in err)) {
    ev.name = err.name || 'Error';
    ev.value = String(err.message ?? '');
    const stack = String(err.stack || `${ev.name}: ${ev.value}`).split('\n');
    ev.traceback = stack.filter((l) => !/node:internal|node:vm|runner\.js|sigintHandlersWrap|runInContext/.test(l));
    const m = String(err.stack || '').match(new RegExp(`${filename}:(\\d+)`));
    if (m) ev.line = Number(m[1]);
    const at = compiling && / \((\d+):(\d+)\)$/.exec(ev.value);
    if (at) {
      // A parse error (acorn's or sucrase's): point at the cell, not the parser.
      ev.line = Number(at[1]);
      ev.value = ev.value.slice(0, at.index);
      ev.traceback = [`${filename}:${at[1]}:${Number(at[2]) + 1}`, `${ev.name}: ${ev.value}`];
    } else {
      // Drop the frame of the wrapper's call, one line below the cell.
      ev.traceback = ev.traceback.filter((l) => !l.includes(`${filename}:${lines + 1}:`));
    }
  } else {
    ev.name = 'Uncaught';
    ev.value = util.inspect(err);
    ev.traceback = [`Uncaught ${ev.value}`];
  }
  return ev;
}

async function run(id, code) {
  count++;
  const filename = `cell-${count}`;
  let abort;
  current = { id, abort: new Promise((resolve) => { abort = resolve; }) };
  current.interrupt = () => { current.interrupted = true; abort({ interrupted: true }); };
  let status = 'ok';
  let compiling = true;
  try {
    const src = sucrase
      ? sucrase.transform(code, { transforms: ['typescript'], keepUnusedImports: true, disableESTransforms: true }).code
      : code;
    const { code: js, names } = rewrite(src);
    for (const n of names) if (!(n in sandbox)) sandbox[n] = undefined;
    compiling = false;
    // A SIGINT that came while the cell was being transformed waits in the
    // event loop: let it in before the cell runs, or a synchronous loop
    // would start with its interrupt already spent.
    await new Promise((resolve) => setImmediate(resolve));
    if (current.interrupted) throw Object.assign(new Error('interrupted'), { code: 'ERR_SCRIPT_EXECUTION_INTERRUPTED' });
    const promise = vm.runInContext(js, sandbox, { filename, breakOnSigint: true });
    const r = await Promise.race([promise.then((value) => ({ value })), current.abort]);
    if (r.interrupted) {
      status = 'interrupted';
      promise.catch(() => {});
    } else if (r.value !== undefined) {
      send({ t: 'result', id, data: bundle(r.value), display: false });
    }
  } catch (err) {
    if (err && err.code === 'ERR_SCRIPT_EXECUTION_INTERRUPTED') {
      status = 'interrupted';
    } else {
      status = 'error';
      send(errorEvent(id, err, filename, compiling, code.split('\n').length));
    }
  }
  current = null;
  send({ t: 'done', id, count, status });
}

// SIGINT while awaiting: give up on the cell (its promise may still settle
// later, unseen). SIGINT during synchronous code is handled by breakOnSigint.
process.on('SIGINT', () => { if (current) current.interrupt(); });
process.on('unhandledRejection', (err) => { process.stderr.write(`Unhandled rejection: ${util.inspect(err)}\n`); });
process.on('uncaughtException', (err) => { process.stderr.write(`Uncaught exception: ${util.inspect(err)}\n`); });

let queue = Promise.resolve();
readline.createInterface({ input: chan, crlfDelay: Infinity }).on('line', (line) => {
  const msg = JSON.parse(line);
  queue = queue.then(() => run(msg.id, msg.code));
});
chan.on('end', () => process.exit(0));
send({ t: 'ready', lang });
