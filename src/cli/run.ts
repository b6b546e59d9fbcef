/** Runs the CLI from source (`node --import tsx src/cli/run.ts <command> ...`): tests and development. */
import { runProcess } from './main.js';

process.exitCode = await runProcess(process.argv.slice(2));
