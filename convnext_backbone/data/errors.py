"""The errors of the data a run reads (annotation files, images): each message names the file
and the fix, so our tools print it as one ``error: ...`` line."""


class DataError(ValueError):
    """The data a config points at cannot be used as it is; the text says why and what to do."""


class ImageDecodeError(DataError):
    """An image of the dataset does not decode while the run loads it.

    Raised inside a data loader worker, torch re-raises it in the main process as
    ``ImageDecodeError(<the worker's whole traceback>)``; ``str()`` keeps only our message,
    so the tool's one line stays one line.
    """

    def __str__(self) -> str:
        text = super().__str__()
        marker = f'{type(self).__name__}: '
        if 'Traceback' in text and marker in text:
            text = text.rsplit(marker, 1)[1].strip()
        return text
