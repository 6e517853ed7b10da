import { MemoryEngine } from '../../src/engine/memory.js';
import { engineContract } from './contract.js';

engineContract({ name: 'memory', create: async (opts) => new MemoryEngine(opts) });
