#!/usr/bin/env node
// Before `npm test`: the suite needs Debian's redis-server, chromium and Python client packages. As root with apt-get they are
// installed here; otherwise this stops at once and prints the exact command to run.
import { existsSync } from 'node:fs';
import { ensureDebianPackages, onPath, pythonHas } from './debian-packages.mjs';

ensureDebianPackages('npm test', [
  { pkg: 'redis-server', present: () => onPath('redis-server') },
  { pkg: 'chromium', present: () => existsSync('/usr/bin/chromium') },
  // Python clients for the compatibility tests (Debian's, run with /usr/bin/python3).
  { pkg: 'python3-redis', present: () => pythonHas('redis') },
  { pkg: 'python3-flask', present: () => pythonHas('flask') },
  { pkg: 'python3-websocket', present: () => pythonHas('websocket') },
  { pkg: 'python3-requests', present: () => pythonHas('requests') },
  { pkg: 'python3-msgpack', present: () => pythonHas('msgpack') },
]);
