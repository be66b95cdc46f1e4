/* AreaWatch area map: the households of /api/map as points coloured by status, over each
 * area's outline, drawn with the bundled Leaflet. Tiles only when the server names a tile URL;
 * without one the map makes no network request beyond /api/map. The list below the map stays
 * the accessible view of the same data; the map is an addition. */
(function () {
  "use strict";

  var RADIUS = { alert: 9, outage: 8, watch: 8, silenced: 7, normal: 6 };

  function colour(status) {
    var value = getComputedStyle(document.documentElement).getPropertyValue("--" + status);
    return value.trim() || "#555";
  }

  function popup(properties, labels) {
    var box = document.createElement("div");
    var link = document.createElement("a");
    link.href = properties.url;
    link.textContent = properties.name + " (" + properties.id + ")";
    box.appendChild(link);
    var line = document.createElement("div");
    line.textContent = (labels[properties.status] || properties.status) +
      (properties.reason ? ": " + (properties.reason_localised || properties.reason) : "");
    box.appendChild(line);
    return box;
  }

  function draw(element, data) {
    var tiles = element.dataset.tiles;
    var labels = JSON.parse(element.dataset.labels || "{}");
    var map = L.map(element, { attributionControl: Boolean(tiles), zoomSnap: 0.25 });
    if (tiles) {
      L.tileLayer(tiles, { maxZoom: 19, attribution: element.dataset.attribution || "" }).addTo(map);
    }
    var areas = data.features.filter(function (f) { return f.properties.kind === "area"; });
    var homes = data.features.filter(function (f) { return f.properties.kind === "household"; });
    var outlines = L.geoJSON({ type: "FeatureCollection", features: areas }, {
      style: { color: "#37474f", weight: 2, dashArray: "6 4", fillColor: "#b0bec5", fillOpacity: 0.15 },
      onEachFeature: function (feature, layer) {
        layer.bindTooltip(feature.properties.area, { sticky: true });
      },
    }).addTo(map);
    var points = L.geoJSON({ type: "FeatureCollection", features: homes }, {
      pointToLayer: function (feature, latlng) {
        var status = feature.properties.status;
        return L.circleMarker(latlng, {
          radius: RADIUS[status] || 6,
          color: "#fff",
          weight: 1.5,
          fillColor: colour(status),
          fillOpacity: 0.95,
          className: "household-marker status-" + status,
        });
      },
      onEachFeature: function (feature, layer) {
        layer.bindPopup(popup(feature.properties, labels));
      },
    }).addTo(map);
    // Urgent households drawn last, on top of quiet ones nearby.
    points.eachLayer(function (layer) {
      if (layer.feature.properties.status !== "normal") { layer.bringToFront(); }
    });
    var bounds = outlines.getBounds().extend(points.getBounds());
    if (bounds.isValid()) {
      map.fitBounds(bounds, { padding: [16, 16], maxZoom: 17 });
    } else {
      map.setView([0, 0], 1);
      var note = document.createElement("p");
      note.className = "map-empty";
      note.textContent = element.dataset.empty;
      element.appendChild(note);
    }
    element.dataset.ready = String(homes.length);
  }

  function start() {
    var element = document.getElementById("area-map");
    if (!element || typeof L === "undefined") { return; }
    fetch(element.dataset.src, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("map data: HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) { draw(element, data); })
      .catch(function (error) {
        element.dataset.ready = "error";
        element.textContent = String(error.message || error);
      });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
