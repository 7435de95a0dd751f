// The Function App on a Flex Consumption plan: Python 3.11 (what the tests run), the user-assigned
// identity for everything (storage, Key Vault references, telemetry, Graph), and no secret in any
// setting: source secrets are Key Vault references. No platform health check (healthCheckPath): Flex
// Consumption does not offer it; GET /api/health is there for monitoring and for operators.
param token string
param location string
param tags object
param identityId string
param identityClientId string
param storageAccountName string
param deploymentContainerUrl string
param appInsightsName string
param keyVaultName string
param providerRegistrationId string
param sources object

@description('Most instances per function group (the HTTP functions together, every other function on its own). apply_event, the one that writes to Graph, holds at most batchSize + newBatchThreshold (host.json: 24) messages per instance, so this times 24 caps the Graph writes in flight.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int

@description('HTTP requests one instance runs at once (Flex Consumption ignores host.json\'s HTTP limits); also the Python worker\'s thread count, since the HTTP functions are synchronous.')
@minValue(1)
@maxValue(1000)
param httpPerInstanceConcurrency int

@description('Whether the identity holds LearningAssignedCourse.ReadWrite.All (main.bicep enableAssignments).')
param assignmentsEnabled bool = false

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

var queueServiceUri = 'https://${storageAccountName}.queue.${environment().suffixes.storage}'
var tableServiceUri = 'https://${storageAccountName}.table.${environment().suffixes.storage}'
var identitySettings = {
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  BRIDGE_STORAGE__queueServiceUri: queueServiceUri
  BRIDGE_STORAGE__tableServiceUri: tableServiceUri
  BRIDGE_STORAGE__credential: 'managedidentity'
  BRIDGE_STORAGE__clientId: identityClientId
  AZURE_CLIENT_ID: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY: 'true'
  // The synchronous HTTP functions run on the Python worker's thread pool, which without this setting
  // has Python's default size, min(32, CPUs + 4) (azure-functions-python-worker, the threadpool
  // module's _get_max_workers: ThreadPoolExecutor(max_workers=None)): as many threads as requests one
  // instance is given, so none waits for a thread while the platform thinks it is running.
  PYTHON_THREADPOOL_THREAD_COUNT: string(httpPerInstanceConcurrency)
}
var bridgeSettings = {
  BRIDGE_SOURCES: string(sources)
  BRIDGE_PROVIDER_REGISTRATION_ID: providerRegistrationId
  BRIDGE_GRAPH_AUTH: 'managedIdentity'
  BRIDGE_ASSIGNMENTS_ENABLED: string(assignmentsEnabled)
}
// One Key Vault reference per source: BRIDGE_SOURCE_<NAME>_SECRET -> secret "source-<name>". Built from
// the `sources` parameter only (known when the deployment starts), never from a resource's properties.
var sourceSecrets = toObject(
  items(sources),
  source => 'BRIDGE_SOURCE_${toUpper(replace(source.key, '-', '_'))}_SECRET',
  source => '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=source-${source.key})'
)

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-${token}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

// scaleAndConcurrency: Flex Consumption scales per function group, each up to maximumInstanceCount
// ("Azure Functions Flex Consumption plan hosting", Per-function scaling; azure-functions-host
// FunctionGroupListenerDecorator starts on an instance only the listeners of its group). HTTP concurrency
// per instance is set there, not in host.json, whose HTTP limits Flex does not apply
// (azure-functions-host#11790). The numbers are in docs/deploy/index.md.
resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: 'func-${token}'
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      remoteDebuggingEnabled: false
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: 2048
        triggers: {
          http: {
            perInstanceConcurrency: httpPerInstanceConcurrency
          }
        }
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// The app settings as one object, in their own resource as the Flex Consumption quickstarts do: a
// union() of objects may hold runtime values (the connection string), where a for-expression over
// them may not (BCP178). This resource replaces every app setting on each provision.
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: union(identitySettings, bridgeSettings, sourceSecrets)
}

resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: { allow: false }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: { allow: false }
}

output name string = site.name
output url string = 'https://${site.properties.defaultHostName}/api'
