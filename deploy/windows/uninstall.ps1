#Requires -Version 5.1
#Requires -RunAsAdministrator
<#
.SYNOPSIS
  Stops and unregisters the image-dedup watcher task. The drop zone (run folders, unique\, archive\, .dedup\) is
  left exactly as it is; -RemoveInstall also deletes the installed copy of the tool (never any image).
  The task name and install folder default to what install.ps1 recorded in HKLM:\SOFTWARE\image-dedup.
#>
[CmdletBinding()]
param(
    [string] $TaskName = "",
    [string] $InstallDir = "",
    [switch] $RemoveInstall
)
$ErrorActionPreference = "Stop"
$registryKey = "HKLM:\SOFTWARE\image-dedup"
$record = Get-ItemProperty -LiteralPath $registryKey -ErrorAction SilentlyContinue
if (-not $TaskName) { $TaskName = if ($record -and $record.TaskName) { $record.TaskName } else { "image-dedup watcher" } }
if (-not $InstallDir -and $record) { $InstallDir = $record.InstallDir }

foreach ($name in $TaskName, "$TaskName (install check)") {
    if (Get-ScheduledTask -TaskName $name -ErrorAction SilentlyContinue) {
        Stop-ScheduledTask -TaskName $name
        Unregister-ScheduledTask -TaskName $name -Confirm:$false
        Write-Host "Task '$name' removed."
    }
}
if ($RemoveInstall) {
    if ($InstallDir -and (Test-Path -LiteralPath (Join-Path $InstallDir ".venv"))) {
        Remove-Item -Recurse -Force -LiteralPath $InstallDir
        Write-Host "Removed $InstallDir. Images and records in the drop zone were not touched."
    } else {
        Write-Host "No install found (recorded: '$InstallDir'); pass -InstallDir if it is elsewhere."
    }
    if ($record) { Remove-Item -Recurse -Force -LiteralPath $registryKey }
}
