// Runs the cache-tests suite's own client engine against a base URL (the cache under test)
// and classifies each result with the suite's own rules (test-engine/lib/results.mjs,
// dependencies honoured). Writes one JSON document; run.py prints the summary.
//
// Usage: node drive.mjs SUITE_DIR BASE_URL shared|private OUT.json [TEST_ID...]
//
// The two selections are the suite's own:
//   shared  = what its command-line client runs for a proxy or CDN (runTests(..., false)):
//             every test except browser_only ones;
//   private = what it runs inside a browser (runTests(..., true), as test-browser.html does):
//             every test except cdn_only and browser_skip ones. In this mode the client
//             sends requests as a user agent does (no Pragma/Cache-Control of its own).
import fs from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'

const [suite, base, selection, out, ...onlyIds] = process.argv.slice(2)
if (!suite || !base || !['shared', 'private'].includes(selection) || !out) {
  console.error('usage: node drive.mjs SUITE_DIR BASE_URL shared|private OUT.json [TEST_ID...]')
  process.exit(2)
}
const load = rel => import(pathToFileURL(path.resolve(suite, rel)).href)
const { runTests, getResults } = await load('test-engine/client/runner.mjs')
const { determineTestResult, resultTypes } = await load('test-engine/lib/results.mjs')
const tests = (await load('tests/index.mjs')).default

const browser = selection === 'private'
const applies = browser
  ? t => t.cdn_only !== true && t.browser_skip !== true
  : t => t.browser_only !== true

let toRun = tests
if (onlyIds.length) {
  toRun = tests.map(s => ({ ...s, tests: s.tests.filter(t => onlyIds.includes(t.id)) }))
    .filter(s => s.tests.length)
}

const started = Date.now()
await runTests(toRun, browser, base.replace(/\/$/, ''))
const raw = getResults()

const nameOf = symbol => Object.keys(resultTypes).find(k => resultTypes[k] === symbol) || 'unknown'
const results = []
for (const group of toRun) {
  for (const t of group.tests) {
    if (!applies(t)) continue
    results.push({
      id: t.id,
      group: group.id,
      name: t.name,
      kind: t.kind || 'required',
      depends_on: t.depends_on || [],
      result: nameOf(determineTestResult(tests, t.id, raw, true)),
      raw: t.id in raw ? raw[t.id] : null
    })
  }
}
fs.writeFileSync(out, JSON.stringify({
  selection,
  base,
  seconds: (Date.now() - started) / 1000,
  results
}, null, 1))
