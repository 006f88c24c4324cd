"""The run folder: `writer` fills it while training; `reader` (`Run`, `load_run`) is all that later steps
use. `layout` names its files. Import the module you need: the writer and the reader are separate on purpose."""
