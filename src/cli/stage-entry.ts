/** Process entry of one pipeline stage (what `slimgrad pipeline` spawns): `stage-entry <stage options>`. */
import { main } from './main.js';

process.exitCode = await main(['stage', ...process.argv.slice(2)]);
