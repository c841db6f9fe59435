<#
.SYNOPSIS
  Stops and unregisters the image-dedup watcher task. The drop zone (run folders, unique\, archive\, .dedup\) is
  left exactly as it is; -RemoveInstall also deletes the installed copy of the tool (never any image).
#>
[CmdletBinding()]
param(
    [string] $TaskName = "image-dedup watcher",
    [string] $InstallDir = "$env:ProgramData\image-dedup",
    [switch] $RemoveInstall
)
$ErrorActionPreference = "Stop"
$task = Get-ScheduledTask -TaskName $TaskName -ErrorAction SilentlyContinue
if ($task) {
    Stop-ScheduledTask -TaskName $TaskName
    Unregister-ScheduledTask -TaskName $TaskName -Confirm:$false
    Write-Host "Task '$TaskName' removed."
} else {
    Write-Host "No task named '$TaskName'."
}
if ($RemoveInstall -and (Test-Path -LiteralPath (Join-Path $InstallDir ".venv"))) {
    Remove-Item -Recurse -Force -LiteralPath $InstallDir
    Write-Host "Removed $InstallDir. Images and records in the drop zone were not touched."
}
