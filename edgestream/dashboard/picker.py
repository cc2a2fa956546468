"""Stream picker: every LSL stream on the network, ticked when the dashboard reads it."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from edgestream.dashboard.acquisition import Acquisition
from edgestream.dashboard.panels.base import MUTED, STATE_COLORS

KEY_ROLE = QtCore.Qt.ItemDataRole.UserRole
TIP_ROLE = QtCore.Qt.ItemDataRole.UserRole + 1
STATE_ROLE = QtCore.Qt.ItemDataRole.UserRole + 2  # connection state shown (tests read it)


class StreamPicker(QtWidgets.QWidget):
    """A tree of discovered streams with check boxes; ticking opens a stream, unticking closes it.

    Names are coloured by connection state (green connected, amber stalled, red lost or failed,
    blue recovering, grey not read).
    """

    def state_of(self, key: str) -> str:
        """The state text shown for a stream (its tooltip says the same)."""
        item = self._items.get(key)
        return str(item.data(0, STATE_ROLE)) if item is not None else ""

    def __init__(self, acquisition: Acquisition, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.acquisition = acquisition
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        self.tree = QtWidgets.QTreeWidget()
        # The name is coloured by connection state (state and details in its tooltip), leaving
        # the width to the names.
        self.tree.setHeaderLabels(["stream", "type", "Hz"])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setTextElideMode(QtCore.Qt.TextElideMode.ElideMiddle)
        self.tree.itemChanged.connect(self._changed)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.setMinimumWidth(280)
        self.hint = QtWidgets.QLabel("Searching the network for LSL streams…")
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet(f"color: {MUTED};")
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.hint)
        self._items: dict[str, QtWidgets.QTreeWidgetItem] = {}

    def refresh(self) -> None:
        """Sync the tree with the acquisition's discovered streams and feed states."""
        found = self.acquisition.discovered()
        feeds = {f.key: f for f in self.acquisition.feeds()}
        failures = self.acquisition.failures()
        self.tree.blockSignals(True)
        for key in [k for k in self._items if k not in {d.key for d in found}]:
            self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(self._items.pop(key)))
        for d in found:
            item = self._items.get(d.key)
            if item is None:
                item = QtWidgets.QTreeWidgetItem([d.name, d.type, "irregular" if d.sfreq == 0 else f"{d.sfreq:g}", ""])
                item.setData(0, KEY_ROLE, d.key)
                item.setFlags(item.flags() | QtCore.Qt.ItemFlag.ItemIsUserCheckable)
                item.setData(0, TIP_ROLE, f"{d.name}: {d.n_channels} channels, source_id {d.source_id or '(none)'} on {d.hostname}")
                self.tree.addTopLevelItem(item)
                self._items[d.key] = item
            checked = self.acquisition.is_selected(d.key)
            item.setCheckState(0, QtCore.Qt.CheckState.Checked if checked else QtCore.Qt.CheckState.Unchecked)
            feed = feeds.get(d.key)
            if d.key in failures:
                state_text, colour = f"could not open: {failures[d.key]}", "#e8615a"
            elif feed is not None:
                state_text, colour = feed.reader.state.value, STATE_COLORS[feed.reader.state]
            else:
                state_text, colour = ("opening…" if checked else "not read"), MUTED
            item.setData(0, STATE_ROLE, state_text)
            item.setToolTip(0, f"{item.data(0, TIP_ROLE)}\nstate: {state_text}")
            item.setForeground(0, QtGui.QColor(colour))
        self.tree.blockSignals(False)
        for col in range(1, 3):
            self.tree.resizeColumnToContents(col)
        rounds = self.acquisition.resolve_rounds
        self.hint.setText(f"{len(found)} stream(s) on the network, {len(feeds)} open. Untick to stop reading one."
                          if found or rounds else "Searching the network for LSL streams…")

    def _changed(self, item: QtWidgets.QTreeWidgetItem, column: int) -> None:
        if column == 0:
            self.acquisition.select(item.data(0, KEY_ROLE), item.checkState(0) == QtCore.Qt.CheckState.Checked)
