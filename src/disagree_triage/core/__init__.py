"""What every stage shares and nothing else: the one-line user errors (`errors`), the kind of
task (`kinds`), label maps (`labels`), span keys and sets (`spans`) and secret redaction
(`redaction`). Imports nothing of the package."""
