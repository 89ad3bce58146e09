"""Scale generalization benchmark (STIR protocol): train on some object sizes, test on
others, for every method (docs/scale-generalization.md). ``sesn generalization``."""
