// dynalite (npm, an implementation of DynamoDB's API in node) on 127.0.0.1 and a free
// port, which it prints on one line once it listens; dynalite's own --port 0 means 4567.
// In memory; tables are ACTIVE at once. Stopped by its PID (SIGTERM or SIGKILL).
//     node dynalite.js [DYNALITE_MODULE_DIR [PORT]]
'use strict';
const where = process.argv[2] || '/usr/local/lib/node_modules/dynalite';
const port = Number(process.argv[3] || 0);
const dynalite = require(where);
const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(server.address().port + '\n');
});
process.on('SIGTERM', () => process.exit(0));
