#!/usr/bin/env node
// `npx warden …`: runs the TypeScript CLI through tsx (a dependency of the repo).
import { register } from 'tsx/esm/api';

register();
await import('./warden.ts');
