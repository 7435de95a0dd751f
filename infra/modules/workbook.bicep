// An Azure Monitor workbook: events per source and outcome over time, end-to-end lag percentiles,
// Graph latency and throttling. Queries read the bridge's OpenTelemetry metrics in Application Insights.
param location string
param tags object
param appInsightsId string

var events = 'customMetrics | where name == "bridge.events" | extend source = tostring(customDimensions.source), outcome = tostring(customDimensions.outcome)'

var content = {
  version: 'Notebook/1.0'
  items: [
    {
      type: 1
      content: { json: '## Viva Learning bridge\nEvents received, applied, rejected, parked and dead-lettered per source; lag from event to Graph; Graph latency and throttling.' }
    }
    {
      type: 3
      content: {
        version: 'KqlItem/1.0'
        title: 'Events per outcome'
        query: '${events} | summarize events = sum(valueSum) by outcome, bin(timestamp, 15m) | render timechart'
        queryType: 0
        resourceType: 'microsoft.insights/components'
        visualization: 'timechart'
      }
    }
    {
      type: 3
      content: {
        version: 'KqlItem/1.0'
        title: 'Events per source and outcome'
        query: '${events} | summarize events = sum(valueSum) by source, outcome | order by source asc'
        queryType: 0
        resourceType: 'microsoft.insights/components'
        visualization: 'table'
      }
    }
    {
      type: 3
      content: {
        version: 'KqlItem/1.0'
        title: 'End-to-end lag (event time to applied), seconds'
        query: 'customMetrics | where name == "bridge.event.lag" | summarize p50 = percentile(value, 50), p95 = percentile(value, 95), p99 = percentile(value, 99) by bin(timestamp, 1h) | render timechart'
        queryType: 0
        resourceType: 'microsoft.insights/components'
        visualization: 'timechart'
      }
    }
    {
      type: 3
      content: {
        version: 'KqlItem/1.0'
        title: 'Graph request duration (ms) and throttling'
        query: 'customMetrics | where name in ("bridge.graph.duration", "bridge.graph.throttled") | summarize avg_ms = avgif(value, name == "bridge.graph.duration"), throttled = sumif(valueSum, name == "bridge.graph.throttled") by bin(timestamp, 15m) | render timechart'
        queryType: 0
        resourceType: 'microsoft.insights/components'
        visualization: 'timechart'
      }
    }
  ]
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(appInsightsId, 'viva-learning-bridge-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'Viva Learning bridge'
    category: 'workbook'
    sourceId: appInsightsId
    serializedData: string(content)
  }
}
