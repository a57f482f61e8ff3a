"""The one error class of the deployment tools: a message that names the problem and the fix."""


class ExportError(ValueError):
    """A model, checkpoint, input shape or config that cannot be exported or run as asked.

    The message names what is wrong and what to do about it; ``tools/export.py`` prints it as
    one ``error: ...`` line.
    """
