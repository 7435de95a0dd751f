// The Viva Learning bridge in Azure: a Flex Consumption Function App reaching Storage, Key Vault,
// Application Insights and Microsoft Graph with one user-assigned managed identity and no secrets.
// Deployed by `azd up` (see azure.yaml and docs/deploy/index.md).
targetScope = 'subscription'

@minLength(1)
@maxLength(40)
@description('azd environment name; names and tags the resources.')
param environmentName string

// Regions offering Flex Consumption, as listed by the Flex Consumption quickstart
// (Azure-Samples/functions-quickstart-python-http-azd, 2025-11-24) less its canary region, eastus2euap,
// and less the regions without zone-redundant storage (the account is Standard_ZRS; "Azure regions that
// support zone-redundant storage"): australiasoutheast, northcentralus, southindia, ukwest,
// westcentralus, westus.
// The list grows: `az functionapp list-flexconsumption-locations` gives today's, and a region added
// here needs nothing else.
@minLength(1)
@description('Azure region (one that offers Flex Consumption).')
@allowed([
  'australiaeast'
  'brazilsouth'
  'canadacentral'
  'centralindia'
  'centralus'
  'eastasia'
  'eastus'
  'eastus2'
  'francecentral'
  'germanywestcentral'
  'italynorth'
  'japaneast'
  'koreacentral'
  'northeurope'
  'norwayeast'
  'southafricanorth'
  'southcentralus'
  'southeastasia'
  'spaincentral'
  'swedencentral'
  'uaenorth'
  'uksouth'
  'westeurope'
  'westus2'
  'westus3'
])
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Viva Learning provider registration id whose course activities the bridge writes.')
param providerRegistrationId string

@description('Sources as in BRIDGE_SOURCES: name -> {format, ...options}. Never secrets: each source reads its secret from the Key Vault secret "source-<name>".')
param sources object = {
  generic: {
    format: 'generic'
  }
}

@description('Grant the Graph application permissions to the identity here (needs an admin who can grant app roles). False when the admin grants them separately.')
param grantGraphPermissions bool = true

@description('Grant LearningContent.ReadWrite.All too, for `catalog push` and sources with the registerContent option (they create Viva Learning content). Off by default: course activities need only LearningContent.Read.All.')
param enableContentWrites bool = false

@description('Write assigned courses (learningAssignment: required or recommended, with a due date): grants LearningAssignedCourse.ReadWrite.All and sets BRIDGE_ASSIGNMENTS_ENABLED=true. Off by default: events carrying an assignment are then refused (422 assignments-disabled).')
param enableAssignments bool = false

@description('Object id of the person (or pipeline) operating the bridge; azd fills it with the signed-in user. Gets Key Vault Secrets Officer on the vault and the storage queue and table data roles the CLI uses. Empty for none.')
param principalId string = ''

@description('What principalId is: User (azd signed in as a person), ServicePrincipal (a pipeline) or Group.')
@allowed(['User', 'ServicePrincipal', 'Group'])
param principalType string = 'User'

@description('Key Vault purge protection. Off by default: with it on, after `azd down` the vault name stays reserved for 90 days and this environment cannot be provisioned again under the same name (use a new environment name). Once on, it cannot be turned off.')
param keyVaultPurgeProtection bool = false

@description('Email address for alert notifications; empty for none.')
param alertEmail string = ''

@description('Alert when no event arrived for this long (ISO 8601 duration, at most P2D).')
param noEventsPeriod string = 'PT6H'

@description('Alert when a source that sent events in the last two days has sent none for this many hours (each source its own alert).')
@minValue(1)
@maxValue(47)
param sourceSilenceHours int = 12

@description('Per-source silence periods in hours (each 1 to 47, like sourceSilenceHours: a longer one fails the deployment), overriding sourceSilenceHours: {"academy": 24} for a platform that sends once a day.')
param sourceSilenceHoursBySource object = {}

@description('Alert when this percentage of received events is rejected or dead-lettered within 15 minutes.')
@minValue(1)
@maxValue(100)
param failureRatePercent int = 5

@description('Most instances per function group on Flex Consumption (HTTP functions together, every other function on its own). The cap on Graph writes in flight is this times 24 (host.json batchSize 16 + newBatchThreshold 8): 10 gives 240. A region that refuses a value under 40 (the lower limit reached regions one by one) needs 40: 960 in flight.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 10

@description('HTTP requests one instance of the HTTP functions runs at once (and the Python worker threads that run them).')
@minValue(1)
@maxValue(1000)
param httpPerInstanceConcurrency int = 16

var tags = { 'azd-env-name': environmentName, application: 'viva-learning-bridge' }
var token = toLower(uniqueString(subscription().id, environmentName, location))

resource group 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: group
  params: {
    name: 'id-${token}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: group
  params: {
    token: token
    location: location
    tags: tags
    principalId: identity.outputs.principalId
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: group
  params: {
    name: 'st${token}'
    location: location
    tags: tags
    principalId: identity.outputs.principalId
    operatorPrincipalId: principalId
    operatorPrincipalType: principalType
  }
}

module vault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: group
  params: {
    name: 'kv-${token}'
    location: location
    tags: tags
    principalId: identity.outputs.principalId
    operatorPrincipalId: principalId
    operatorPrincipalType: principalType
    purgeProtection: keyVaultPurgeProtection
  }
}

module app 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: group
  params: {
    token: token
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    appInsightsName: monitoring.outputs.appInsightsName
    keyVaultName: vault.outputs.name
    providerRegistrationId: providerRegistrationId
    sources: sources
    maximumInstanceCount: maximumInstanceCount
    httpPerInstanceConcurrency: httpPerInstanceConcurrency
    assignmentsEnabled: enableAssignments
  }
}

module graphPermissions 'modules/graph-permissions.bicep' = if (grantGraphPermissions) {
  name: 'graph-permissions'
  scope: group
  params: {
    principalId: identity.outputs.principalId
    contentWrites: enableContentWrites
    assignments: enableAssignments
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  scope: group
  params: {
    token: token
    location: location
    tags: tags
    workspaceId: monitoring.outputs.workspaceId
    alertEmail: alertEmail
    noEventsPeriod: noEventsPeriod
    failureRatePercent: failureRatePercent
    sourceSilenceHours: sourceSilenceHours
    sourceSilenceHoursBySource: sourceSilenceHoursBySource
  }
}

module workbook 'modules/workbook.bicep' = {
  name: 'workbook'
  scope: group
  params: {
    location: location
    tags: tags
    appInsightsId: monitoring.outputs.appInsightsId
  }
}

output AZURE_LOCATION string = location
output AZURE_RESOURCE_GROUP string = group.name
output FUNCTION_APP_NAME string = app.outputs.name
output BRIDGE_URL string = app.outputs.url
output KEY_VAULT_NAME string = vault.outputs.name
output MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
