"""Suite files → run specs: the suite format and its validator, references and claims, the source documents, run
identity."""
