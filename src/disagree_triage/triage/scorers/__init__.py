"""The registered scorers: of entity span sets (`spans`), of category votes (`categories`),
and of one model's likely errors (`target`)."""
