// Alerts on the bridge's own metrics (bridge.events, by outcome): dead letters appearing, Graph refusing
// every write for a tenant-wide reason, too many events failing, and silence (no event received for a while: a platform stopped sending); and on the
// logs: an app the host could not index (zero functions) or one that is not configured.
param token string
param location string
param tags object
param workspaceId string
param alertEmail string
param noEventsPeriod string
param failureRatePercent int
param sourceSilenceHours int
param sourceSilenceHoursBySource object

var events = 'AppMetrics | where Name == "bridge.events" | extend outcome = tostring(Properties.outcome)'

// One action group for every alert, deployed whether or not alertEmail is set, so receivers (Teams
// through a Logic App or webhook, SMS, ...) can be added to it later and every alert already uses it.
// Without alertEmail it has no receiver: only groupShortName and enabled are required, every receiver
// list is optional (the Microsoft.Insights/actionGroups template reference,
// learn.microsoft.com/azure/templates/microsoft.insights/actiongroups; New-AzActionGroup,
// learn.microsoft.com/powershell/module/az.monitor/new-azactiongroup, takes every receiver as optional).
resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-${token}'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'vlbridge'
    enabled: true
    emailReceivers: empty(alertEmail) ? [] : [
      {
        name: 'operators'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

var actions = [actionGroup.id]

resource deadLetters 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'alert-deadletters-${token}'
  location: location
  tags: tags
  properties: {
    displayName: 'Viva Learning bridge: events dead-lettered'
    description: 'Events could not be applied to Graph and wait in the dead-letter store with their reason.'
    severity: 2
    enabled: true
    scopes: [workspaceId]
    // AppMetrics exists only once the app has sent a metric: validating the query against a new
    // workspace would fail the deployment.
    skipQueryValidation: true
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: '${events} | where outcome == "deadlettered" | summarize total = sum(Sum)'
          metricMeasureColumn: 'total'
          timeAggregation: 'Total'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    actions: { actionGroups: actions }
  }
}

// Graph's tenant-wide refusals (shared.delivery.deadletters.TENANT_WIDE): the tenant has no plan that
// includes Viva Learning, the provider's course activity sync is off, the content belongs to another
// provider, the registration id names no registered provider, or the app's identity lacks the app
// role. No event can be applied until an administrator fixes it, whoever the learner: severity 1.
// The learning API documents these answers in resources/learningcourseactivity-error-codes
// (microsoft-graph-docs-contrib); `python -m shared.cli status` says what fixes each.
var tenantWideReasons = '"tenantNotLicensed", "providerNotEnabled", "contentOfAnotherProvider", "providerNotRegistered", "appRoleMissing"'

resource tenantWide 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'alert-tenant-wide-${token}'
  location: location
  tags: tags
  properties: {
    displayName: 'Viva Learning bridge: Graph refuses every write (plan, provider sync, content owner, registration id, app role)'
    description: 'Events were dead-lettered as tenantNotLicensed, providerNotEnabled, contentOfAnotherProvider, providerNotRegistered or appRoleMissing: the tenant needs a plan that includes Viva Learning, the provider needs isCourseActivitySyncEnabled, the courses belong to another provider, BRIDGE_PROVIDER_REGISTRATION_ID names no registered provider, or the identity of the app lacks the course activity app role. Fix it, then replay them with the CLI (replay --reason).'
    severity: 1
    enabled: true
    scopes: [workspaceId]
    // AppMetrics exists only once the app has sent a metric: validating the query against a new
    // workspace would fail the deployment.
    skipQueryValidation: true
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: '${events} | extend reason = tostring(Properties.reason) | where outcome == "deadlettered" and reason in (${tenantWideReasons}) | summarize total = sum(Sum) by reason'
          metricMeasureColumn: 'total'
          timeAggregation: 'Total'
          dimensions: [
            { name: 'reason', operator: 'Include', values: ['*'] }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    actions: { actionGroups: actions }
  }
}

resource failureRate 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'alert-failure-rate-${token}'
  location: location
  tags: tags
  properties: {
    displayName: 'Viva Learning bridge: failure rate above ${failureRatePercent} %'
    description: 'The share of received events that were rejected or dead-lettered.'
    severity: 2
    enabled: true
    scopes: [workspaceId]
    // AppMetrics exists only once the app has sent a metric: validating the query against a new
    // workspace would fail the deployment.
    skipQueryValidation: true
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: '${events} | summarize received = sumif(Sum, outcome == "received"), failed = sumif(Sum, outcome in ("rejected", "deadlettered")) | where received > 0 | extend rate = 100.0 * failed / received'
          metricMeasureColumn: 'rate'
          timeAggregation: 'Maximum'
          operator: 'GreaterThan'
          threshold: failureRatePercent
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    actions: { actionGroups: actions }
  }
}

resource silence 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'alert-no-events-${token}'
  location: location
  tags: tags
  properties: {
    displayName: 'Viva Learning bridge: no events for ${noEventsPeriod}'
    description: 'No platform delivered an event the bridge accepted: a webhook may have been switched off or its secret rotated.'
    severity: 3
    enabled: true
    scopes: [workspaceId]
    // AppMetrics exists only once the app has sent a metric: validating the query against a new
    // workspace would fail the deployment.
    skipQueryValidation: true
    evaluationFrequency: 'PT1H'
    windowSize: noEventsPeriod
    criteria: {
      allOf: [
        {
          query: '${events} | where outcome == "accepted" | summarize total = coalesce(sum(Sum), 0.0)'
          metricMeasureColumn: 'total'
          timeAggregation: 'Total'
          operator: 'LessThan'
          threshold: 1
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    actions: { actionGroups: actions }
  }
}

// One source gone quiet while the others go on (the all-quiet case is `silence` above): a source that
// sent in the last two days (the query's look-back, overrideQueryTimeRange) and nothing for its period
// (sourceSilenceHoursBySource[source], else sourceSilenceHours). One alert per source: the `source`
// dimension names it. A source silent for longer than the look-back no longer counts as one that
// normally sends, and its alert resolves; `silence` and the platform's own monitoring cover that.
// Only accepted deliveries count (a source whose deliveries are all refused, e.g. signed with a rotated
// secret, is silent), and never the `unknown` pseudo-source (a URL naming no configured source).
// A per-source period is 1 to 47 hours, like sourceSilenceHours: a log search alert looks back at most
// two days, so a longer period could never fire; a longer one fails the deployment, naming the source
// (Bicep's fail(), learn.microsoft.com/azure/azure-resource-manager/bicep/bicep-functions-flow-control).
var silenceRows = [for period in items(sourceSilenceHoursBySource): (period.value >= 1 && period.value <= 47) ? '"${period.key}", ${period.value}' : fail('sourceSilenceHoursBySource: the period of source ${period.key} must be 1 to 47 hours (the alert looks back two days)')]
var silencePeriods = join(silenceRows, ', ')

resource sourceSilence 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'alert-source-silent-${token}'
  location: location
  tags: tags
  properties: {
    displayName: 'Viva Learning bridge: a source stopped sending'
    description: 'A source that sent events in the last two days has sent none for its period: its webhook may have been switched off, its secret rotated on one side only, or the platform is down. The source is named in the dimensions of the alert.'
    severity: 2
    enabled: true
    scopes: [workspaceId]
    // AppMetrics exists only once the app has sent a metric: validating the query against a new
    // workspace would fail the deployment.
    skipQueryValidation: true
    evaluationFrequency: 'PT1H'
    windowSize: 'PT1H'
    overrideQueryTimeRange: 'P2D'
    criteria: {
      allOf: [
        {
          query: '${events} | extend source = tostring(Properties.source) | where outcome == "accepted" and source != "unknown" | summarize last = max(TimeGenerated) by source | join kind=leftouter (datatable(source: string, hours: int)[${silencePeriods}]) on source | extend hours = coalesce(hours, ${sourceSilenceHours}) | extend silentHours = (now() - last) / 1h | where silentHours > hours | project source, silentHours'
          metricMeasureColumn: 'silentHours'
          timeAggregation: 'Maximum'
          dimensions: [
            { name: 'source', operator: 'Include', values: ['*'] }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    actions: { actionGroups: actions }
  }
}

// The host indexed no function, or the app runs unconfigured. Both leave the deployment "succeeded"
// and every request failing, so they are severity 1, looked for every 5 minutes. The signal is the
// log, which reaches Application Insights on Flex with telemetryMode OpenTelemetry: the host exports
// its own logs through OpenTelemetry ("Use OpenTelemetry with Azure Functions",
// learn.microsoft.com/azure/azure-functions/opentelemetry-howto) and the worker its own (the app
// setting PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY); in a workspace-based resource they are the
// AppTraces and AppExceptions tables ("AppTraces", learn.microsoft.com/azure/azure-monitor/reference/
// tables/apptraces). The phrases: the host's "Worker failed to index functions" (azure-functions-host
// GrpcWorkerChannel.ProcessFunctionMetadataResponses, logged with the exception) and "0 functions
// loaded" (the host's count after indexing), and the app's own "bridge not configured"
// (shared.functions.bridge.UNCONFIGURED: logged at import and by every timer run, every 5 minutes).
var logText = 'extend text = strcat(tostring(column_ifexists("Message", "")), " ", tostring(column_ifexists("OuterMessage", "")), " ", tostring(column_ifexists("Properties", "")))'

resource unconfigured 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'alert-unconfigured-${token}'
  location: location
  tags: tags
  properties: {
    displayName: 'Viva Learning bridge: no function indexed, or not configured'
    description: 'The Functions host found no function in the app (an exception while importing function_app) or the app runs without a usable app-wide setting: webhooks are refused and no event reaches Graph. GET /api/health names the settings to fix.'
    severity: 1
    enabled: true
    scopes: [workspaceId]
    // AppTraces and AppExceptions exist only once something was logged: validating the query against a
    // new workspace would fail the deployment.
    skipQueryValidation: true
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: 'union isfuzzy=true AppTraces, AppExceptions | ${logText} | where text has "Worker failed to index functions" or text has "0 functions loaded" or text has "bridge not configured" | summarize total = count()'
          metricMeasureColumn: 'total'
          timeAggregation: 'Total'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    actions: { actionGroups: actions }
  }
}
