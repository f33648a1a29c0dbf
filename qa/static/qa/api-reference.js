/* Starts Swagger UI (drf-spectacular-sidecar's bundle) on the API reference page, with the
 * schema's address from the page: a static file, since the Content-Security-Policy allows no
 * inline script. */
"use strict";

(function () {
  const root = document.getElementById("swagger-ui");
  if (!root || !window.SwaggerUIBundle) return;
  window.ui = window.SwaggerUIBundle({
    url: root.dataset.schemaUrl,
    domNode: root,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    // No badge from the public validator: another origin, which the policy blocks.
    validatorUrl: null,
  });
})();
