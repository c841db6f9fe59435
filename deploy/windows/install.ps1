<#
.SYNOPSIS
  Installs image-dedup on an instrument server and registers the watcher with Task Scheduler.

.EXAMPLE
  # as an administrator, from the unpacked repository:
  powershell -ExecutionPolicy Bypass -File deploy\windows\install.ps1 -WatchDir F:\Imaging -RunDepth 2

.EXAMPLE
  # a network share needs a domain account that can read and write it (SYSTEM cannot):
  powershell -ExecutionPolicy Bypass -File deploy\windows\install.ps1 -WatchDir \\nas\Imaging -Polling `
      -User LAB\svc-imaging
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)] [string] $WatchDir,
    [int] $RunDepth = 1,
    [string] $InstallDir = "$env:ProgramData\image-dedup",
    [string] $User = "NT AUTHORITY\SYSTEM",
    [switch] $Polling,
    [string] $ExtraArgs = "",
    [string] $Python = "py",
    [string] $TaskName = "image-dedup watcher"
)
$ErrorActionPreference = "Stop"
$repo = (Resolve-Path (Join-Path $PSScriptRoot "..\..")).Path

if (-not (Test-Path -LiteralPath $WatchDir -PathType Container)) {
    throw "The watched folder $WatchDir does not exist or is not a folder: check the path and that the drive is mounted."
}

Write-Host "1/4 copying the tool to $InstallDir"
New-Item -ItemType Directory -Force -Path $InstallDir | Out-Null
foreach ($item in "task_script", "local_runner", "protocol", "pyproject.toml", "requirements.txt", "README.md") {
    Copy-Item -Recurse -Force -LiteralPath (Join-Path $repo $item) -Destination $InstallDir
}

Write-Host "2/4 creating the virtual environment (Python 3.10 or later)"
$venv = Join-Path $InstallDir ".venv"
if ($Python -eq "py") { & py -3 -m venv $venv } else { & $Python -m venv $venv }
if ($LASTEXITCODE -ne 0) { throw "Creating the virtual environment failed: install Python 3.10+ from python.org (with the py launcher)." }
$venvPython = Join-Path $venv "Scripts\python.exe"
Push-Location $InstallDir
try {
    & $venvPython -m pip install --disable-pip-version-check -q -r requirements.txt
    if ($LASTEXITCODE -ne 0) { throw "pip install failed: see the messages above (a proxy may need HTTPS_PROXY set)." }
} finally { Pop-Location }

Write-Host "3/4 checking the watched folder with a dry run"
$logFile = Join-Path $WatchDir ".dedup\logs\local_runner.log"
& $venvPython -m local_runner status $WatchDir
if ($LASTEXITCODE -ne 0) { throw "The tool cannot read $WatchDir with this account." }

Write-Host "4/4 registering the scheduled task '$TaskName' (runs as $User)"
$extra = ""
if ($Polling) { $extra += " --polling" }
if ($ExtraArgs) { $extra += " $ExtraArgs" }
$logonType = if ($User -match "^(NT AUTHORITY\\)?(SYSTEM|LOCAL SERVICE|NETWORK SERVICE)$") { "ServiceAccount" } else { "Password" }
$xml = Get-Content -Raw -LiteralPath (Join-Path $PSScriptRoot "image-dedup-watcher.xml")
$values = @{
    "{{PYTHON}}" = $venvPython; "{{WATCH_DIR}}" = $WatchDir; "{{RUN_DEPTH}}" = "$RunDepth"; "{{LOG_FILE}}" = $logFile;
    "{{INSTALL_DIR}}" = $InstallDir; "{{USER}}" = $User; "{{LOGON_TYPE}}" = $logonType; "{{EXTRA_ARGS}}" = $extra
}
foreach ($key in $values.Keys) { $xml = $xml.Replace($key, [System.Security.SecurityElement]::Escape($values[$key])) }
if ($logonType -eq "Password") {
    $credential = Get-Credential -UserName $User -Message "Password of $User (stored by Task Scheduler to run without a logged-on user)"
    Register-ScheduledTask -TaskName $TaskName -Xml $xml -User $User -Password $credential.GetNetworkCredential().Password -Force | Out-Null
} else {
    Register-ScheduledTask -TaskName $TaskName -Xml $xml -User $User -Force | Out-Null
}
Start-ScheduledTask -TaskName $TaskName
Write-Host "Installed. The watcher runs now and at every boot. Log: $logFile"
Write-Host "Status:  $venvPython -m local_runner status $WatchDir"
Write-Host "Remove:  powershell -ExecutionPolicy Bypass -File deploy\windows\uninstall.ps1"
