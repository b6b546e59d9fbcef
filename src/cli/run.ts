/** Runs the CLI from source (`node --import tsx src/cli/run.ts <command> ...`): tests and development. */
import { main } from './main.js';

process.exitCode = await main(process.argv.slice(2));
