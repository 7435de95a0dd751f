// Alerts on the bridge's own metrics (bridge.events, by outcome): dead letters appearing, too many
// events failing, and silence (no event received for a while: a platform stopped sending).
param token string
param location string
param tags object
param workspaceId string
param alertEmail string
param noEventsPeriod string
param failureRatePercent int

var events = 'AppMetrics | where Name == "bridge.events" | extend outcome = tostring(Properties.outcome)'

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmail)) {
  name: 'ag-${token}'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'vlbridge'
    enabled: true
    emailReceivers: [
      {
        name: 'operators'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

var actions = empty(alertEmail) ? [] : [actionGroup.id]

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
    description: 'No platform delivered an event: a webhook may have been switched off or its secret rotated.'
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
          query: '${events} | where outcome == "received" | summarize total = coalesce(sum(Sum), 0.0)'
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
