"""Scrolling traces drawn incrementally, one pixel column at a time.

Redrawing 64 lanes × a screen width of min/max points every frame costs more than everything
else the dashboard does. Here the traces live in an image instead: each frame scrolls it by the
pixel columns time has advanced and draws only the new columns (and the newest, still-filling
one). A full redraw happens only when what a pixel means changes — plot size, window length,
channels shown, gains, scale or a lane's centre.

* :class:`ColumnStore` keeps, per pixel column, each channel's minimum and maximum of the
  samples stamped in it. Column ``c`` holds stamps in ``[c / px_per_s, (c + 1) / px_per_s)``:
  columns are anchored to absolute time, so a column's contents never depend on when frames
  were drawn.
* :class:`TraceCanvas` draws those columns into a ``QImage``: one polyline per lane through each
  column's minimum then maximum. The pixels of a column are final once the next non-empty
  column is complete, so an incremental update clears and redraws from the newest complete
  column onwards and gives the same picture as drawing the whole window at once
  (``tests/dashboard/test_canvas.py``).
* :class:`CanvasItem` shows the image in a pyqtgraph plot, pixel for pixel.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui

# (lo, hi) per column and channel, raw units → the same in lane coordinates (plot y units)
LaneMap = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


class ColumnStore:
    """Minimum and maximum per pixel column and channel, updated as samples arrive.

    Empty columns (no sample stamped there) hold NaN.

    Parameters
    ----------
    px_per_s : float
        Columns per second of stream time.
    n_columns : int
        Columns kept (the newest ones).
    n_channels : int
    columns : ndarray of int or None
        Columns of the source rows to keep (None: all).
    """

    def __init__(self, px_per_s: float, n_columns: int, n_channels: int, columns: np.ndarray | None = None) -> None:
        self.px_per_s = float(px_per_s)
        self.capacity = int(n_columns)
        self.columns = columns
        self.lo = np.full((self.capacity, n_channels), np.nan, np.float32)
        self.hi = np.full((self.capacity, n_channels), np.nan, np.float32)
        self.filled = np.zeros(self.capacity, bool)
        self.newest: int | None = None  # absolute column of the newest sample
        self.cursor: int | None = None  # absolute index of the next source row to consume
        self.restarts = 0  # rows overwritten before they were read, or time jumped back: started over

    def column_of(self, stamps: np.ndarray) -> np.ndarray:
        return np.floor(np.asarray(stamps, np.float64) * self.px_per_s).astype(np.int64)

    def clear(self) -> None:
        self.filled[:] = False
        self.lo[:] = np.nan
        self.hi[:] = np.nan
        self.newest = None

    def update(self, since: Any) -> None:
        """Consume new rows from ``since(cursor) -> (data, stamps, new_cursor, skipped)``."""
        data, stamps, end, skipped = since(self.cursor if self.cursor is not None else 0)
        if skipped and self.cursor is not None:
            self.restarts += 1
            self.clear()
        self.cursor = end
        self.add(data if self.columns is None else data[:, self.columns], stamps)

    def add(self, data: np.ndarray, stamps: np.ndarray) -> None:
        """Fold rows (n, C) stamped ``stamps`` (n,) into their columns.

        A row stamped before the newest column (clock jitter) joins the newest column; a jump
        back by more than the store holds starts the store over.
        """
        if not len(stamps):
            return
        cols = self.column_of(stamps)
        if self.newest is not None and cols[0] < self.newest - self.capacity:
            self.restarts += 1
            self.clear()
        floor = cols[0] if self.newest is None else self.newest
        cols = np.maximum.accumulate(np.maximum(cols, floor))
        starts = np.flatnonzero(np.r_[True, cols[1:] != cols[:-1]])
        ucols = cols[starts]
        lo = np.fmin.reduceat(data, starts, axis=0)
        hi = np.fmax.reduceat(data, starts, axis=0)
        if self.newest is not None and ucols[0] == self.newest:  # the still-filling column grows
            k = self.newest % self.capacity
            self.lo[k] = np.fmin(self.lo[k], lo[0])
            self.hi[k] = np.fmax(self.hi[k], hi[0])
            ucols, lo, hi = ucols[1:], lo[1:], hi[1:]
        if not len(ucols):
            return
        first_new = ucols[0] if self.newest is None else self.newest + 1
        # columns skipped over (no samples there) are empty
        empty = np.arange(max(first_new, ucols[-1] - self.capacity + 1), ucols[-1] + 1) % self.capacity
        self.filled[empty] = False
        self.lo[empty] = np.nan
        self.hi[empty] = np.nan
        keep = ucols > ucols[-1] - self.capacity
        idx = ucols[keep] % self.capacity
        self.lo[idx], self.hi[idx], self.filled[idx] = lo[keep], hi[keep], True
        self.newest = int(ucols[-1])

    def span(self) -> tuple[np.ndarray, np.ndarray]:
        """Each channel's minimum and maximum over the columns kept: (C,) each (NaN if none)."""
        with np.errstate(invalid="ignore"):
            return np.fmin.reduce(self.lo, axis=0), np.fmax.reduce(self.hi, axis=0)

    def filled_between(self, first: int, last: int) -> np.ndarray:
        """Absolute indices of the non-empty columns in ``[first, last]`` (clipped to what is kept)."""
        if self.newest is None:
            return np.zeros(0, np.int64)
        first = max(first, self.newest - self.capacity + 1)
        cols = np.arange(first, min(last, self.newest) + 1)
        return cols[self.filled[cols % self.capacity]]

    def extrema(self, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi) of columns ``cols``: each (len(cols), C)."""
        idx = cols % self.capacity
        return self.lo[idx], self.hi[idx]


class TraceCanvas:
    """Lanes drawn into an image that holds the newest ``width`` columns of a store.

    The image is a ring: absolute column ``c`` lives in pixel column ``c % width``, so time
    advancing costs no copying — new columns overwrite the oldest, and :class:`CanvasItem`
    shows the two halves in order.

    Parameters
    ----------
    width, height : int
        Pixels.
    y_top, y_bottom : float
        Lane coordinates at the image's top and bottom edges.
    colors : sequence of str
        Pen colours, taken in turn by consecutive lanes.
    background : str
        The image is opaque (copied to the screen without blending): the plot's background.
    """

    def __init__(self, width: int, height: int, y_top: float, y_bottom: float, colors: tuple[str, ...],
                 background: str = "#000000") -> None:
        self.width, self.height = int(width), int(height)
        self.y_top, self.y_bottom = float(y_top), float(y_bottom)
        self.blank = np.uint32(QtGui.QColor(background).rgb())  # 0xffRRGGBB
        self.pixels = np.full((self.height, self.width), self.blank, np.uint32)
        self.image = QtGui.QImage(self.pixels.data, self.width, self.height, 4 * self.width,
                                  QtGui.QImage.Format.Format_RGB32)
        self.pens = []
        for c in colors:
            pen = QtGui.QPen(QtGui.QColor(c))
            pen.setWidth(1)
            pen.setCosmetic(True)
            self.pens.append(pen)
        self.right: int | None = None  # the newest absolute column drawn
        self.redraw_from: int | None = None  # first column whose pixels may still change
        self.full_draws = 0
        self.columns_drawn = 0

    def invalidate(self) -> None:
        """Draw everything again on the next :meth:`draw` (scale, gains or channels changed)."""
        self.right = None

    @property
    def left(self) -> int:
        """The oldest absolute column the image holds."""
        assert self.right is not None
        return self.right - self.width + 1

    def unwrapped(self) -> np.ndarray:
        """The pixels in time order, oldest column first: (height, width) 0xffRRGGBB."""
        return np.roll(self.pixels, -((self.right + 1) % self.width), axis=1) if self.right is not None else self.pixels

    def draw(self, store: ColumnStore, to_lanes: LaneMap) -> None:
        """Bring the image up to the store's newest column."""
        newest = store.newest
        if newest is None:
            self.pixels[:] = self.blank
            self.right = None
            return
        if self.right is None or newest < self.right or newest - self.right >= self.width:
            self.right = newest
            self.full_draws += 1
            start = self.left
        else:
            self.right = newest
            start = max(self.redraw_from if self.redraw_from is not None else self.left, self.left)
        self._draw_from(store, start, to_lanes)

    def _draw_from(self, store: ColumnStore, start: int, to_lanes: LaneMap) -> None:
        """Clear columns ``start`` … newest and draw the lanes there again."""
        assert self.right is not None
        w = self.width
        j0, j1 = start % w, self.right % w  # the ring's pixel columns to redraw: j0 … j1, maybe wrapping
        if self.right - start + 1 >= w:
            self.pixels[:] = self.blank
        elif j0 <= j1:
            self.pixels[:, j0:j1 + 1] = self.blank
        else:
            self.pixels[:, j0:] = self.blank
            self.pixels[:, :j1 + 1] = self.blank
        cols = store.filled_between(self.left - 1, self.right)
        if not len(cols):
            self.redraw_from = None
            return
        i0 = max(0, int(np.searchsorted(cols, start)) - 1)  # the line enters from the previous column
        cols = cols[i0:]
        # what a later frame may still change: from the newest complete column onwards
        self.redraw_from = int(cols[-2]) if len(cols) >= 2 else int(cols[-1])
        self.columns_drawn += self.right - start + 1
        lo, hi = to_lanes(*store.extrema(cols))
        ys = np.empty((lo.shape[1], 2 * len(cols)), np.float64)
        ys[:, 0::2], ys[:, 1::2] = lo.T, hi.T  # each column: minimum, then maximum
        rows = (self.y_top - ys) * (self.height / (self.y_top - self.y_bottom))
        base = start - j0  # absolute column at pixel 0 of this pass; the next pass wraps round
        xs = np.repeat((cols - base).astype(np.float64) + 0.5, 2)
        connect = np.ones(xs.size, bool)
        connect[-1] = False  # no line from one lane's end to the next lane's start
        passes = [(0.0, QtCore.QRect(j0, 0, w - j0, self.height))]
        if self.right - base >= w:  # the redrawn columns wrap round the ring's end
            passes.append((-float(w), QtCore.QRect(0, 0, self.right - base - w + 1, self.height)))
        paths = []
        for k in range(len(self.pens)):
            lanes = rows[k::len(self.pens)]
            paths.append(pg.arrayToQPath(np.tile(xs, len(lanes)), lanes.ravel(), connect=np.tile(connect, len(lanes)))
                         if len(lanes) else None)
        painter = QtGui.QPainter(self.image)
        try:
            for dx, clip in passes:
                painter.setClipRect(clip)
                painter.translate(dx, 0.0)
                for pen, path in zip(self.pens, paths):
                    if path is not None:
                        painter.setPen(pen)
                        painter.drawPath(path)
                painter.translate(-dx, 0.0)
        finally:
            painter.end()


class CanvasItem(pg.GraphicsObject):
    """Shows a :class:`TraceCanvas` in a plot, unscaled: the image's pixel columns stay pixel
    columns on the screen, placed by the time of its last column."""

    def __init__(self) -> None:
        super().__init__()
        self.canvas: TraceCanvas | None = None
        self.x_left = 0.0  # plot x of the oldest column's left edge
        self.clip_left = -np.inf  # nothing is shown left of this plot x
        self._rect = QtCore.QRectF()  # the part shown: all that is repainted when it moves

    def place(self, canvas: TraceCanvas | None, x_left: float, x_width: float) -> None:
        """Show ``canvas`` with its oldest column's left edge at ``x_left``, spanning ``x_width`` (plot units)."""
        self.canvas, self.x_left = canvas, x_left
        rect = QtCore.QRectF()
        if canvas is not None and canvas.right is not None:
            left = max(x_left, self.clip_left)
            rect = QtCore.QRectF(left, canvas.y_bottom, x_left + x_width - left, canvas.y_top - canvas.y_bottom)
        if rect != self._rect:
            self.prepareGeometryChange()
            self._rect = rect
        self.update()

    def boundingRect(self) -> QtCore.QRectF:  # noqa: N802 (Qt naming)
        return self._rect

    def paint(self, painter: QtGui.QPainter, *args: Any) -> None:
        canvas = self.canvas
        if canvas is None or canvas.right is None or self._rect.isEmpty():
            return
        to_device = painter.transform()
        corner = to_device.map(QtCore.QPointF(self.x_left, canvas.y_top))
        x0, y0 = round(corner.x()), round(corner.y())
        skip = min(canvas.width, max(0, round(to_device.map(QtCore.QPointF(self._rect.left(), 0.0)).x()) - x0))
        painter.save()
        painter.resetTransform()
        painter.setCompositionMode(QtGui.QPainter.CompositionMode.CompositionMode_Source)  # a plain copy
        oldest = (canvas.right + 1) % canvas.width  # pixel column of the oldest column
        # time order: pixel columns oldest … width-1, then 0 … oldest-1; the first ``skip`` are hidden
        for first, last, at in ((oldest, canvas.width, 0), (0, oldest, canvas.width - oldest)):
            a = max(first, first + skip - at)
            if a < last:
                painter.drawImage(QtCore.QPoint(x0 + at + a - first, y0), canvas.image,
                                  QtCore.QRect(a, 0, last - a, canvas.height))
        painter.restore()
