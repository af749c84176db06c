"""Files in and out: JSONL read with file/line/field errors and written atomically (`jsonl`),
the output checks and atomic writes every command shares (`output_files`), the unlabelled
corpus (`corpus`)."""
