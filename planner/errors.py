"""The package's one exception type for bad input and unanswerable questions."""


class PlannerError(Exception):
    """Bad input, or a question the tool cannot answer.

    The message is one line saying what is wrong and how to fix it; the CLI prints it on stderr
    and exits with code 2. Core code raises this, never typer.Exit.
    """
