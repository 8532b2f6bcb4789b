import type { Command } from 'commander';
import { err, examples, fail, type SetExit } from '../common.js';

/** `layertap demo-data [dir]`: write the demo image set. */
export function register(program: Command, setExit: SetExit): void {
  program
    .command('demo-data')
    .argument('[dir]', 'folder to write them to', 'data/demo')
    .description('write the demo image set (6 scenes x 8 edits, deterministic) used by config/examples/demo.yaml')
    .addHelpText('after', examples('layertap demo-data /tmp/demo'))
    .action(async (dir: string) => {
      try {
        const { writeDemoImages } = await import('../demo-data.js');
        const r = await writeDemoImages(dir);
        err(r.written ? `wrote ${r.images} demo images to ${r.dir}` : `demo images already in ${r.dir} (${r.images})`);
      } catch (e) {
        setExit(fail(e, false));
      }
    });
}
