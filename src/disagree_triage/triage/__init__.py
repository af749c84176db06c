"""The triage stage: join the models' files on the text (`align`), name their differences
(`differences`), read category votes (`votes`), weigh who is likely wrong (`evidence`), score
each example (`scoring`, with the registered `scorers`) and route it to the queue (`queue`)."""
