"""Run by Debian's /usr/bin/python3 (python3-qgis) from tests/test_qgis.py: load a collection over OGC API Features,
apply our SLD, report what QGIS made of it (JSON on stdout) and render a PNG.

usage: QT_QPA_PLATFORM=offscreen /usr/bin/python3 sld_check.py BASE_URL COLLECTION SLD_FILE PNG_FILE
"""

import json
import os
import sys
from collections import Counter

from qgis.core import (
    QgsApplication,
    QgsExpression,
    QgsExpressionContext,
    QgsExpressionContextUtils,
    QgsMapRendererParallelJob,
    QgsMapSettings,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QSize
from qgis.PyQt.QtGui import QColor

base, collection, sld_path, png_path = sys.argv[1:5]
app = QgsApplication([], False)
app.initQgis()
out = {}
try:
    layer = QgsVectorLayer(f"url='{base}' typename='{collection}'", collection, "OAPIF")
    out["valid"] = layer.isValid()
    out["features"] = layer.featureCount()
    if not layer.isValid():
        out["error"] = layer.error().summary()
        print(json.dumps(out), flush=True)
        os._exit(0)
    res = layer.loadSldStyle(sld_path)
    out["loadSld"] = [str(x) for x in res] if isinstance(res, tuple) else str(res)
    renderer = layer.renderer()
    out["renderer"] = renderer.type()
    rules = []
    if renderer.type() == "RuleRenderer":
        features = list(layer.getFeatures())
        ctx = QgsExpressionContext(QgsExpressionContextUtils.globalProjectLayerScopes(layer))
        for rule in renderer.rootRule().children():
            sym = rule.symbol()
            info = {"label": rule.label(), "filter": rule.filterExpression(),
                    "minScale": rule.minimumScale(), "maxScale": rule.maximumScale(),
                    "symbolType": sym.type() if sym else None,
                    "color": sym.color().name() if sym else None,
                    "opacity": sym.opacity() if sym else None}
            if sym is not None and sym.type() == 0:  # marker
                info["size"] = sym.size()
                info["fillAlpha"] = sym.symbolLayer(0).fillColor().alphaF()
            if sym is not None and sym.type() == 2:  # fill
                info["fillAlpha"] = sym.symbolLayer(0).fillColor().alphaF()
            expr = QgsExpression(rule.filterExpression() or "TRUE")
            n = 0
            for f in features:
                ctx.setFeature(f)
                if expr.evaluate(ctx):
                    n += 1
            info["matching"] = n
            rules.append(info)
    out["rules"] = rules
    out["labels"] = bool(layer.labelsEnabled())
    labeling = layer.labeling()
    if layer.labelsEnabled() and labeling is not None:
        label_rules = ([(r.settings(), r.minimumScale()) for r in labeling.rootRule().children()]
                       if labeling.type() == "rule-based" else [(labeling.settings(), 0.0)])
        out["labelRules"] = [{"field": s.fieldName, "font": s.format().font().family(), "size": s.format().size(),
                              "color": s.format().color().name(), "minScale": scale} for s, scale in label_rules]
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(layer.crs())
    settings.setOutputSize(QSize(800, 800))
    settings.setBackgroundColor(QColor(255, 255, 255))
    extent = layer.extent()
    extent.scale(1.05)
    settings.setExtent(extent)
    out["scale"] = settings.scale()
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    image.save(png_path, "png")
    counts = Counter()
    for y in range(image.height()):
        for x in range(image.width()):
            counts[QColor(image.pixel(x, y)).name()] += 1
    out["colors"] = {c: n for c, n in counts.items() if n >= 4}
finally:
    app.exitQgis()
print(json.dumps(out), flush=True)
os._exit(0)  # Python's teardown after exitQgis() crashes in QGIS 3.22 (SIGSEGV); everything is written by now
