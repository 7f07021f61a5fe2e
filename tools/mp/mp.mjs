// Runs Python under real MicroPython (the WebAssembly build) with edge/core on its path.
//   node tools/mp/mp.mjs test [DIR]      run every test_* function of DIR/test_*.py (default tests/core)
//   node tools/mp/mp.mjs script FILE [ARGS]  run one script (benchmarks); ARGS in mp_args.ARGV
// The virtual file system gets copies of edge/__init__.py and the portable packages
// edge/core/** and edge/node/**, so they are imported exactly as a board holds them.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const [mode = "test", target = "tests/core"] = process.argv.slice(2);
const heapMb = parseInt(process.env.MP_HEAP_MB || "64", 10);
// MP_HEAP_KB (finer) wins: the meter node's memory figure is the smallest heap it runs in.
const heapBytes = process.env.MP_HEAP_KB ? parseInt(process.env.MP_HEAP_KB, 10) * 1024 : heapMb * 1024 * 1024;

function copyTree(mp, src, dst) {
  try { mp.FS.mkdir(dst); } catch (e) { /* exists */ }
  for (const name of fs.readdirSync(src).sort()) {
    const s = path.join(src, name), d = dst + "/" + name;
    const st = fs.statSync(s);
    if (st.isDirectory()) { if (name !== "__pycache__") copyTree(mp, s, d); }
    else if (name.endsWith(".py") || name.endsWith(".json")) mp.FS.writeFile(d, fs.readFileSync(s));
  }
}

const mp = await loadMicroPython({
  heapsize: heapBytes,
  stdout: (line) => process.stdout.write(line + "\n"),
  stderr: (line) => process.stderr.write(line + "\n"),
});
mp.FS.mkdir("/lib"); mp.FS.mkdir("/lib/edge");
mp.FS.writeFile("/lib/edge/__init__.py", fs.readFileSync(path.join(repo, "edge", "__init__.py")));
copyTree(mp, path.join(repo, "edge", "core"), "/lib/edge/core");
copyTree(mp, path.join(repo, "edge", "node"), "/lib/edge/node");
// MP_EXTRA_LIB: one more folder of modules for /lib (micropython-lib's umqtt for the
// meter node's memory figure).
if (process.env.MP_EXTRA_LIB) copyTree(mp, path.resolve(process.env.MP_EXTRA_LIB), "/lib");
mp.runPython("import sys\nsys.path.insert(0, '/lib')\n");

if (mode === "script") {
  const file = path.resolve(target);
  mp.FS.mkdir("/run");
  copyTree(mp, path.dirname(file), "/run");
  // This MicroPython build has no sys.argv: scripts read their arguments from mp_args.ARGV.
  mp.FS.writeFile("/run/mp_args.py", "ARGV = " + JSON.stringify([file, ...process.argv.slice(4)]) + "\n");
  mp.runPython("sys.path.insert(0, '/run')\n");
  try {
    mp.runPython(fs.readFileSync(file, "utf8"));
  } catch (e) {
    process.stderr.write(String(e) + "\n");
    process.exit(1);
  }
  process.exit(0);
}

const testDir = path.resolve(repo, target);
mp.FS.mkdir("/tests");
copyTree(mp, testDir, "/tests");
const modules = fs.readdirSync(testDir).filter((n) => /^test_.*\.py$/.test(n)).sort().map((n) => n.slice(0, -3));
const driver = `
import sys
sys.path.insert(0, '/tests')
passed = 0
failed = 0
for modname in ${JSON.stringify(modules)}:
    try:
        mod = __import__(modname)
    except Exception as e:
        failed += 1
        print('FAIL', modname, '(import)')
        sys.print_exception(e)
        continue
    for name in sorted(dir(mod)):
        if not name.startswith('test_'):
            continue
        fn = getattr(mod, name)
        if not callable(fn):
            continue
        try:
            fn()
            passed += 1
        except Exception as e:
            failed += 1
            print('FAIL', modname + '.' + name)
            sys.print_exception(e)
print('micropython:', sys.implementation.version)
print('micropython: %d passed, %d failed' % (passed, failed))
_passed = passed
_failed = failed
`;
let passed = 0, failed = 1;
try {
  mp.runPython(driver);
  passed = Number(mp.globals.get("_passed"));
  failed = Number(mp.globals.get("_failed"));
} catch (e) {
  process.stderr.write("MicroPython runner crashed: " + String(e) + "\n");
  process.exit(2);
}
if (failed > 0) process.exit(1);
if (passed === 0) { process.stderr.write("no tests ran under MicroPython: that is a failure\n"); process.exit(5); }
process.exit(0);
