#!/usr/bin/env node
// malloc's huge pages for the commands that run models (dist/cli/huge-pages.js), before anything else loads
import('../dist/cli/huge-pages.js')
  .then((h) => h.startWithHugePages(process.argv))
  .then(() => import('../dist/cli/main.js'))
  .then((m) => m.main(process.argv))
  .catch((err) => {
    process.stderr.write(`layertap: ${err && err.message ? err.message : String(err)}\n`);
    process.exit(1);
  });
