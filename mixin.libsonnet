// The iap_ha monitoring mixin: the committed rule pack and dashboards as
// jsonnet, read from the files themselves (never a second copy).
//
//   local iapHA = (import 'mixin.libsonnet') + {
//     _config+:: { exporterSelector: 'job=~"iap-ha-.*"' },
//   };
//   iapHA.prometheusAlerts   // rules/iap_ha.alerts.yml
//   iapHA.prometheusRules    // rules/iap_ha.rules.yml
//   iapHA.grafanaDashboards  // dashboards/*.json, by file name
local defaultExporterSelector = 'job=~"iap[_-]ha.*"';

{
  _config+:: {
    // The scrape jobs of the exporters, as IAPHAExporterDown selects them.
    exporterSelector: defaultExporterSelector,
  },

  local withSelector(file, selector) = {
    groups: [
      group {
        rules: [
          rule + (if std.objectHas(rule, 'expr') then { expr: std.strReplace(rule.expr, defaultExporterSelector, selector) } else {})
          for rule in group.rules
        ],
      }
      for group in std.parseYaml(file).groups
    ],
  },

  prometheusAlerts+:: withSelector(importstr 'rules/iap_ha.alerts.yml', $._config.exporterSelector),
  prometheusRules+:: std.parseYaml(importstr 'rules/iap_ha.rules.yml'),

  grafanaDashboards+:: {
    'iap-ha-iap.json': import 'dashboards/iap-ha-iap.json',
    'iap-ha-mongodb.json': import 'dashboards/iap-ha-mongodb.json',
    'iap-ha-overview.json': import 'dashboards/iap-ha-overview.json',
    'iap-ha-rabbitmq.json': import 'dashboards/iap-ha-rabbitmq.json',
    'iap-ha-redis.json': import 'dashboards/iap-ha-redis.json',
    'iap-ha-remediation.json': import 'dashboards/iap-ha-remediation.json',
  },
}
