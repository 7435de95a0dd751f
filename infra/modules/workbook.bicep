// An Azure Monitor workbook: events per source and outcome over time, end-to-end lag and Graph latency
// (means and maxima: what a histogram exported as per-interval sum/count/min/max can give; see the
// Latency text), per-event percentiles from spans, and throttling. Queries read the bridge's
// OpenTelemetry metrics and traces in Application Insights.
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
      type: 1
      content: { json: '### Latency\nThe lag and Graph duration are OpenTelemetry histograms. Application Insights receives each as one row per export interval holding that interval\'s sum, count, min and max (`valueSum`, `valueCount`, `valueMin`, `valueMax`; `Sum`, `Count`, `Min`, `Max` in AppMetrics), without buckets. So the charts give the true mean (sum of sums over sum of counts) and the true extremes; percentiles cannot be computed from these rows (a percentile of per-interval sums or means is not a percentile of events). Per-delivery percentiles come from the traces: the `bridge.apply` span below.' }
    }
    {
      type: 3
      content: {
        version: 'KqlItem/1.0'
        title: 'End-to-end lag (event time to applied), seconds: mean and max'
        query: 'customMetrics | where name == "bridge.event.lag" | summarize mean_s = sum(valueSum) / sum(valueCount), max_s = max(valueMax) by bin(timestamp, 1h) | render timechart'
        queryType: 0
        resourceType: 'microsoft.insights/components'
        visualization: 'timechart'
      }
    }
    {
      type: 3
      content: {
        version: 'KqlItem/1.0'
        title: 'Graph request duration (ms): mean and max; throttled requests'
        query: 'customMetrics | where name in ("bridge.graph.duration", "bridge.graph.throttled") | summarize mean_ms = sumif(valueSum, name == "bridge.graph.duration") / sumif(valueCount, name == "bridge.graph.duration"), max_ms = maxif(valueMax, name == "bridge.graph.duration"), throttled = sumif(valueSum, name == "bridge.graph.throttled") by bin(timestamp, 15m) | render timechart'
        queryType: 0
        resourceType: 'microsoft.insights/components'
        visualization: 'timechart'
      }
    }
    {
      type: 3
      content: {
        version: 'KqlItem/1.0'
        title: 'Applying one event (bridge.apply span), ms: percentiles of sampled traces'
        query: 'union dependencies, requests | where name == "bridge.apply" | summarize percentiles(duration, 50, 95, 99) by bin(timestamp, 1h) | render timechart'
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
