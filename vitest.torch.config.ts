import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

// The tests that export models with Debian's python3-torch (run by .ci/run after installing it).
export default defineConfig({ test: { ...base.test, include: ['tests/torch/**/*.test.ts'] } });
